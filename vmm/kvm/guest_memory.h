// Guest RAM: one memfd laid out by a MemoryLayout, mapped once into this process. The VMM
// creates it (and registers it with KVM as one slot per region: Vm::map_guest_memory); the
// root-partition process attaches to the very same memfd with the same layout, so both see the
// same pages. Nothing here needs KVM.
//
// Every access on behalf of the guest goes through translate(), which checks that the whole range
// lies inside one RAM region: guest-controlled addresses are never used unchecked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "kvm/memory_layout.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class GuestMemory {
public:
    // Creates zero-filled guest RAM for `layout`.
    static GuestMemory create(const MemoryLayout& layout);
    // Maps an existing guest-RAM memfd (received from the VMM). Throws HostError if the memfd is
    // smaller than the layout needs or cannot be mapped.
    static GuestMemory attach(UniqueFd memfd, const MemoryLayout& layout);

    const MemoryLayout& layout() const { return layout_; }
    uint64_t size() const { return layout_.ram_bytes(); }
    const std::vector<RamRegion>& regions() const { return layout_.ram(); }
    int memfd() const { return memfd_.get(); }

    // The host view of [gpa, gpa + length), or nullopt unless the whole range is guest RAM
    // inside one region (a range never spans the MMIO hole).
    std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t length) const;

    // Like translate() but for VMM-internal accesses that must succeed; throws std::out_of_range.
    std::span<std::byte> span(uint64_t gpa, uint64_t length) const;

    template <typename T>
    T& object_at(uint64_t gpa) const {
        return *reinterpret_cast<T*>(span(gpa, sizeof(T)).data());
    }

    // Zero-fills [gpa, gpa + length) (which must be RAM). Whole pages are released from the memfd
    // rather than written, so zeroing a large .bss costs no page faults.
    void zero(uint64_t gpa, uint64_t length);

    // Where a region of this layout is mapped in this process.
    std::byte* host_address(const RamRegion& region) const;

private:
    GuestMemory(UniqueFd memfd, Mapping mapping, MemoryLayout layout)
        : memfd_(std::move(memfd)), mapping_(std::move(mapping)), layout_(std::move(layout)) {}
    static Mapping map(int memfd, uint64_t bytes);

    UniqueFd memfd_;
    Mapping mapping_;
    MemoryLayout layout_;
};

}  // namespace hvkvm::vmm
