#include "machine/numa_placement.h"

#include <numaif.h>

#include <fmt/format.h>

#include <map>

#include "hvkvm/numa/host/host_numa.h"

namespace hvkvm::vmm {
namespace {

constexpr uint64_t kPlacementSampleBytes = 1ull << 30;

std::optional<uint32_t> host_node_of(const NumaConfig& numa, uint32_t node) {
    if (!numa.enabled()) return std::nullopt;
    return numa.nodes.at(node).host_node;
}

const char* policy_name(int mode) {
    switch (mode) {
    case MPOL_DEFAULT: return "MPOL_DEFAULT";
    case MPOL_PREFERRED: return "MPOL_PREFERRED";
    case MPOL_BIND: return "MPOL_BIND";
    case MPOL_INTERLEAVE: return "MPOL_INTERLEAVE";
    case MPOL_LOCAL: return "MPOL_LOCAL";
    default: return "policy";
    }
}

std::string describe_policy(const numa::host::MemoryPolicy& policy) {
    std::string nodes;
    for (uint32_t node : policy.nodes) nodes += (nodes.empty() ? "" : ",") + std::to_string(node);
    return policy.nodes.empty() ? policy_name(policy.mode) : fmt::format("{} {{{}}}", policy_name(policy.mode), nodes);
}

// Resident pages per host node over the (sampled) regions of one virtual node.
std::string describe_residency(const GuestMemory& memory, uint32_t node) {
    std::map<int, uint64_t> pages_on;
    uint64_t resident = 0;
    bool sampled = false;
    for (const RamRegion& region : memory.regions()) {
        if (region.node != node) continue;
        const uint64_t bytes = std::min(region.size, kPlacementSampleBytes);
        sampled |= bytes < region.size;
        for (int status : numa::host::nodes_of_pages(memory.span(region.gpa, bytes).data(), bytes)) {
            if (status < 0) continue;  // not touched yet (-ENOENT)
            ++pages_on[status];
            ++resident;
        }
    }
    std::string text = fmt::format("{} pages resident{}", resident, sampled ? " (first GiB of each region)" : "");
    for (const auto& [host_node, pages] : pages_on) text += fmt::format(", {} on host node {}", pages, host_node);
    return text;
}

}  // namespace

void bind_guest_memory(const GuestMemory& memory, const NumaConfig& numa) {
    for (const RamRegion& region : memory.regions())
        if (auto host_node = host_node_of(numa, region.node))
            numa::host::bind_memory_to_node(memory.span(region.gpa, region.size).data(), region.size, *host_node);
}

std::optional<uint32_t> vcpu_host_node(const NumaConfig& numa, uint32_t vcpu) {
    if (!numa.pin_vcpus) return std::nullopt;
    for (const NumaNodeConfig& node : numa.nodes)
        for (uint32_t member : node.vcpus)
            if (member == vcpu) return node.host_node;
    return std::nullopt;
}

std::vector<std::string> describe_memory_placement(const GuestMemory& memory, const NumaConfig& numa) {
    std::vector<std::string> lines;
    for (uint32_t node = 0; node < memory.layout().node_count(); ++node) {
        uint64_t bytes = 0;
        const void* first = nullptr;
        for (const RamRegion& region : memory.regions()) {
            if (region.node != node) continue;
            if (!first) first = memory.span(region.gpa, 1).data();
            bytes += region.size;
        }
        const auto host_node = host_node_of(numa, node);
        lines.push_back(fmt::format("node {}: {} MiB, {}, policy {}, {}", node, bytes >> 20,
                                    host_node ? fmt::format("bound to host node {}", *host_node) : "not bound",
                                    describe_policy(numa::host::memory_policy_at(first)), describe_residency(memory, node)));
    }
    return lines;
}

std::string cpu_list_text(const std::vector<uint32_t>& cpus) {
    std::string text;
    for (size_t i = 0; i < cpus.size();) {
        size_t end = i;
        while (end + 1 < cpus.size() && cpus[end + 1] == cpus[end] + 1) ++end;
        text += (text.empty() ? "" : ",") +
                (end == i ? std::to_string(cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[end]));
        i = end + 1;
    }
    return text.empty() ? "none" : text;
}

}  // namespace hvkvm::vmm
