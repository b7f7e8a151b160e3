#include "hvkvm/numa/topology.h"

namespace hvkvm::numa {
namespace {

Status check_node_distances(const Topology& topology, Symmetry symmetry) {
    DistanceCheck check = check_distances(topology.distances, topology.node_count, symmetry);
    if (check.ok()) return Status::ok();
    if (check.problem == DistanceProblem::kNodeCountOutOfRange)
        return Status::failure("%u nodes: %s", topology.node_count, explain(check.problem));
    return Status::failure("distance[%u][%u] = %u: %s", check.row, check.column,
                           topology.distances.at(check.row, check.column), explain(check.problem));
}

Status check_cpus(const Topology& topology, uint32_t vcpu_count) {
    if (vcpu_count == 0 || vcpu_count > kMaxCpus)
        return Status::failure("%u vCPUs: must be 1..%u", vcpu_count, kMaxCpus);
    CpuSet seen;
    for (uint32_t node = 0; node < topology.node_count; ++node) {
        CpuSet cpus = topology.node_cpus[node];
        CpuSet shared = cpus & seen;
        if (!shared.empty()) {
            uint32_t cpu = shared.first();
            return Status::failure("vCPU %u is in node %u and node %u", cpu, topology.node_of_cpu(cpu), node);
        }
        CpuSet outside = CpuSet::from_bits(cpus.bits() & ~CpuSet::range(0, vcpu_count).bits());
        if (!outside.empty())
            return Status::failure("node %u: vCPU %u does not exist (there are %u)", node, outside.first(), vcpu_count);
        seen = seen | cpus;
    }
    CpuSet missing = CpuSet::from_bits(CpuSet::range(0, vcpu_count).bits() & ~seen.bits());
    if (!missing.empty()) return Status::failure("vCPU %u is in no node", missing.first());
    return Status::ok();
}

Status check_range(const MemoryRange& range, uint32_t index, uint32_t node_count) {
    if (range.size == 0) return Status::failure("memory range %u is empty", index);
    if (range.base % kMemoryGranule != 0 || range.size % kMemoryGranule != 0)
        return Status::failure("memory range %u [%#llx, +%#llx) is not 4 KiB-aligned", index,
                               static_cast<unsigned long long>(range.base), static_cast<unsigned long long>(range.size));
    if (range.end() < range.base)
        return Status::failure("memory range %u wraps past the end of the address space", index);
    if (range.node >= node_count)
        return Status::failure("memory range %u is on node %u, but there are %u nodes", index, range.node, node_count);
    return Status::ok();
}

bool overlap(const MemoryRange& a, const MemoryRange& b) { return a.base < b.end() && b.base < a.end(); }

Status check_memory(const Topology& topology) {
    if (topology.memory_range_count == 0 || topology.memory_range_count > kMaxMemoryRanges)
        return Status::failure("%u memory ranges: must be 1..%u", topology.memory_range_count, kMaxMemoryRanges);
    for (uint32_t i = 0; i < topology.memory_range_count; ++i) {
        Status status = check_range(topology.memory_ranges[i], i, topology.node_count);
        if (!status) return status;
    }
    // At most 32 ranges: comparing every pair is cheaper than sorting a copy.
    for (uint32_t i = 0; i < topology.memory_range_count; ++i)
        for (uint32_t j = i + 1; j < topology.memory_range_count; ++j)
            if (overlap(topology.memory_ranges[i], topology.memory_ranges[j]))
                return Status::failure("memory ranges %u and %u overlap", i, j);
    return Status::ok();
}

Status check_nodes_describe_something(const Topology& topology) {
    NodeMask with_memory = topology.nodes_with_memory();
    NodeMask with_cpus = topology.nodes_with_cpus();
    for (uint32_t node = 0; node < topology.node_count; ++node)
        if (!contains(with_memory | with_cpus, node)) return Status::failure("node %u has neither vCPUs nor memory", node);
    return Status::ok();
}

}  // namespace

uint32_t Topology::node_of_cpu(uint32_t cpu) const {
    for (uint32_t node = 0; node < node_count && node < kMaxNodes; ++node)
        if (node_cpus[node].contains(cpu)) return node;
    return kNoNode;
}

uint64_t Topology::node_memory_bytes(uint32_t node) const {
    uint64_t total = 0;
    for (uint32_t i = 0; i < memory_range_count && i < kMaxMemoryRanges; ++i)
        if (memory_ranges[i].node == node) total += memory_ranges[i].size;
    return total;
}

NodeMask Topology::nodes_with_memory() const {
    NodeMask mask = 0;
    for (uint32_t i = 0; i < memory_range_count && i < kMaxMemoryRanges; ++i)
        if (memory_ranges[i].size != 0 && memory_ranges[i].node < kMaxNodes) mask |= node_bit(memory_ranges[i].node);
    return mask;
}

NodeMask Topology::nodes_with_cpus() const {
    NodeMask mask = 0;
    for (uint32_t node = 0; node < node_count && node < kMaxNodes; ++node)
        if (!node_cpus[node].empty()) mask |= node_bit(node);
    return mask;
}

uint32_t Topology::cpu_count() const {
    uint32_t total = 0;
    for (uint32_t node = 0; node < node_count && node < kMaxNodes; ++node) total += node_cpus[node].count();
    return total;
}

Status validate_topology(const Topology& topology, uint32_t vcpu_count, Symmetry symmetry) {
    if (Status status = check_node_distances(topology, symmetry); !status) return status;
    if (Status status = check_cpus(topology, vcpu_count); !status) return status;
    if (Status status = check_memory(topology); !status) return status;
    return check_nodes_describe_something(topology);
}

}  // namespace hvkvm::numa
