#include "kvm/memory_layout.h"

#include <fmt/format.h>

#include <stdexcept>

#include "hvkvm/abi/align.h"
#include "hvkvm/abi/boot.h"

namespace hvkvm::vmm {

MemoryLayout MemoryLayout::for_ram(uint64_t bytes) {
    const uint64_t nodes[] = {bytes};
    return for_nodes(nodes);
}

MemoryLayout MemoryLayout::for_nodes(std::span<const uint64_t> node_bytes) {
    if (node_bytes.empty()) throw std::invalid_argument("guest RAM layout without any node");
    MemoryLayout layout;
    uint64_t gpa = 0;
    for (uint32_t node = 0; node < node_bytes.size(); ++node) {
        uint64_t remaining = node_bytes[node];
        if (remaining == 0 || !abi::is_aligned(remaining, abi::kLargePageSize))
            throw std::invalid_argument(
                fmt::format("node {}: guest RAM size {:#x} is not a non-zero multiple of 2 MiB", node, remaining));
        while (remaining > 0) {
            if (gpa == abi::kMmioHoleStart) gpa = abi::kMmioHoleEnd;
            const uint64_t room = gpa < abi::kMmioHoleStart ? abi::kMmioHoleStart - gpa : remaining;
            const uint64_t size = std::min(remaining, room);
            // Adjacent pieces of one node merge into one region.
            if (!layout.ram_.empty() && layout.ram_.back().node == node && layout.ram_.back().gpa_end() == gpa)
                layout.ram_.back().size += size;
            else
                layout.ram_.push_back({gpa, size, layout.ram_bytes_, node});
            layout.ram_bytes_ += size;
            gpa += size;
            remaining -= size;
        }
    }
    layout.node_count_ = static_cast<uint32_t>(node_bytes.size());
    return layout;
}

const RamRegion* MemoryLayout::region_containing(uint64_t gpa, uint64_t length) const {
    for (const RamRegion& region : ram_)
        if (gpa < region.gpa_end() && abi::range_within(gpa, length, region.gpa, region.size)) return &region;
    return nullptr;
}

}  // namespace hvkvm::vmm
