// Checks the config's host NUMA placement (numa.nodes[i].host_node, numa.pin_vcpus) against the
// host's nodes, before any VM exists: a node that is absent, has no memory, is outside this
// process's cpuset, or (when vCPUs are to be pinned) has no CPUs is a ConfigError naming the key.
#pragma once

#include <vector>

#include "config/config.h"
#include "hvkvm/numa/host/host_numa.h"

namespace hvkvm::vmm {

// `host` is the host's node list (numa::host::host_nodes() in the VMM; tests pass their own).
void check_host_numa_placement(const NumaConfig& numa, const std::vector<numa::host::HostNode>& host);

}  // namespace hvkvm::vmm
