// Guest RAM: one memfd (so that the root-partition process can map the very same pages later),
// mapped once into the VMM and exposed to KVM as one or two memory slots. RAM beyond 3 GiB is
// placed above 4 GiB so that the 32-bit MMIO hole (LAPIC, IOAPIC) stays free.
//
// Every access on behalf of the guest goes through translate(), which checks that the whole range
// lies inside one RAM region: guest-controlled addresses are never used unchecked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class Vm;

struct RamRegion {
    uint64_t gpa;
    uint64_t size;
    uint64_t memfd_offset;
    uint64_t gpa_end() const { return gpa + size; }
};

class GuestMemory {
public:
    // Creates zero-filled guest RAM of `bytes` bytes (a multiple of 2 MiB).
    static GuestMemory create(uint64_t bytes);

    uint64_t size() const { return size_; }
    const std::vector<RamRegion>& regions() const { return regions_; }
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

    // Registers every RAM region as a KVM memory slot.
    void register_with(Vm& vm) const;

private:
    GuestMemory(UniqueFd memfd, Mapping mapping, uint64_t size, std::vector<RamRegion> regions)
        : memfd_(std::move(memfd)), mapping_(std::move(mapping)), size_(size),
          regions_(std::move(regions)) {}

    UniqueFd memfd_;
    Mapping mapping_;
    uint64_t size_;
    std::vector<RamRegion> regions_;
};

}  // namespace hvkvm::vmm
