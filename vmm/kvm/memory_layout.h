// Where guest RAM lives: a value computed from the config and used by everything that needs to
// know it — the VMM creating the memfd and KVM slots, the root-partition process attaching to the
// same memfd, and the boot info the guest reads. RAM is placed from GPA 0 upwards, node by node,
// skipping the 32-bit MMIO hole (abi::kMmioHoleStart..kMmioHoleEnd: IOAPIC, LAPIC); the memfd
// holds the regions back to back in GPA order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hvkvm::vmm {

struct RamRegion {
    uint64_t gpa;
    uint64_t size;
    uint64_t memfd_offset;
    uint32_t node;  // virtual NUMA node (0 without NUMA)
    uint64_t gpa_end() const { return gpa + size; }
    bool operator==(const RamRegion&) const = default;
};

class MemoryLayout {
public:
    // One node of `bytes` of RAM. Throws std::invalid_argument unless `bytes` is a non-zero
    // multiple of 2 MiB.
    static MemoryLayout for_ram(uint64_t bytes);
    // One run of RAM per node, in node order (each a non-zero multiple of 2 MiB).
    static MemoryLayout for_nodes(std::span<const uint64_t> node_bytes);

    const std::vector<RamRegion>& ram() const { return ram_; }
    uint64_t ram_bytes() const { return ram_bytes_; }
    uint32_t node_count() const { return node_count_; }
    uint64_t highest_gpa_end() const { return ram_.empty() ? 0 : ram_.back().gpa_end(); }

    // The region holding all of [gpa, gpa + length), or null (also for ranges that would wrap).
    const RamRegion* region_containing(uint64_t gpa, uint64_t length) const;

    bool operator==(const MemoryLayout&) const = default;

private:
    std::vector<RamRegion> ram_;
    uint64_t ram_bytes_ = 0;
    uint32_t node_count_ = 0;
};

}  // namespace hvkvm::vmm
