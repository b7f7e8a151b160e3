// Placing the partition on the host's NUMA nodes (numa.nodes[i].host_node, numa.pin_vcpus): each
// virtual node's guest RAM bound to its host node with mbind, and its vCPU threads pinned to that
// node's CPUs; and reading both back for the end-of-run report. docs/numa.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "kvm/guest_memory.h"

namespace hvkvm::vmm {

// Binds the RAM regions of every node that names a host node, right after the memfd is mapped and
// before KVM or the loader touches a page (MPOL_BIND: every later fault allocates there). The
// policy belongs to the memfd's pages, so it holds for KVM's faults through its own mapping too.
// Throws numa::host::HostNumaError (a host node that cannot hold memory: main checks that first).
void bind_guest_memory(const GuestMemory& memory, const NumaConfig& numa);

// The host node whose CPUs vCPU `vcpu`'s thread runs on: its node's host_node with numa.pin_vcpus,
// else none (the host scheduler places it).
std::optional<uint32_t> vcpu_host_node(const NumaConfig& numa, uint32_t vcpu);

// One line per virtual node: its RAM, the memory policy read back (get_mempolicy) and which host
// nodes its resident pages are on (move_pages). Large regions are sampled: their first GiB.
std::vector<std::string> describe_memory_placement(const GuestMemory& memory, const NumaConfig& numa);

// "0-1,4" for a CPU list.
std::string cpu_list_text(const std::vector<uint32_t>& cpus);

}  // namespace hvkvm::vmm
