#include "config/host_numa_check.h"

#include <fmt/format.h>

#include <algorithm>

namespace hvkvm::vmm {
namespace {

std::string node_ids(const std::vector<numa::host::HostNode>& host) {
    std::string ids;
    for (const auto& node : host) ids += (ids.empty() ? "" : ", ") + std::to_string(node.id);
    return ids.empty() ? "none" : ids;
}

// The same wording as numa::host's own errors, so a message reads alike whichever check caught it.
std::string problem_with(uint32_t wanted, const std::vector<numa::host::HostNode>& host, bool needs_cpus) {
    const auto found = std::find_if(host.begin(), host.end(), [&](const auto& node) { return node.id == wanted; });
    if (found == host.end())
        return fmt::format("host NUMA node {} does not exist (this host has node(s) {})", wanted, node_ids(host));
    if (found->memory_bytes == 0) return fmt::format("host NUMA node {} has no memory", wanted);
    if (!found->memory_allowed)
        return fmt::format("host NUMA node {} is outside this process's cpuset (cpuset.mems)", wanted);
    if (needs_cpus && found->cpus.empty())
        return fmt::format("host NUMA node {} has no CPUs to pin this node's vCPUs to (numa.pin_vcpus)", wanted);
    return {};
}

}  // namespace

void check_host_numa_placement(const NumaConfig& numa, const std::vector<numa::host::HostNode>& host) {
    for (size_t n = 0; n < numa.nodes.size(); ++n) {
        const NumaNodeConfig& node = numa.nodes[n];
        if (!node.host_node) continue;
        const bool needs_cpus = numa.pin_vcpus && !node.vcpus.empty();
        if (std::string problem = problem_with(*node.host_node, host, needs_cpus); !problem.empty())
            throw ConfigError(fmt::format("numa.nodes[{}].host_node", n), problem);
    }
}

}  // namespace hvkvm::vmm
