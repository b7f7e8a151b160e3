#include "kvm/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "hvkvm/abi/boot.h"
#include "kvm/kvm.h"
#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

GuestMemory GuestMemory::create(uint64_t bytes) {
    if (bytes == 0 || bytes % abi::kLargePageSize != 0)
        throw std::invalid_argument(fmt::format("guest RAM size {:#x} is not a multiple of 2 MiB", bytes));

    UniqueFd memfd(::memfd_create("hvkvm-guest-ram", MFD_CLOEXEC));
    if (!memfd.valid()) throw_errno("memfd_create for guest RAM");
    if (::ftruncate(memfd.get(), static_cast<off_t>(bytes)) < 0)
        throw_errno(fmt::format("ftruncate guest RAM to {} MiB", bytes >> 20));
    void* address = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                           memfd.get(), 0);
    if (address == MAP_FAILED) throw_errno(fmt::format("mmap {} MiB of guest RAM", bytes >> 20));
    Mapping mapping(address, bytes);

    std::vector<RamRegion> regions;
    const uint64_t low = std::min(bytes, abi::kMmioHoleStart);
    regions.push_back({0, low, 0});
    if (bytes > low) regions.push_back({abi::kMmioHoleEnd, bytes - low, low});
    return GuestMemory(std::move(memfd), std::move(mapping), bytes, std::move(regions));
}

std::optional<std::span<std::byte>> GuestMemory::translate(uint64_t gpa, uint64_t length) const {
    for (const RamRegion& region : regions_) {
        if (gpa < region.gpa || gpa >= region.gpa_end()) continue;
        const uint64_t offset_in_region = gpa - region.gpa;
        if (length > region.size - offset_in_region) return std::nullopt;
        auto* base = static_cast<std::byte*>(mapping_.get()) + region.memfd_offset + offset_in_region;
        return std::span<std::byte>(base, length);
    }
    return std::nullopt;
}

std::span<std::byte> GuestMemory::span(uint64_t gpa, uint64_t length) const {
    if (auto bytes = translate(gpa, length)) return *bytes;
    throw std::out_of_range(fmt::format("guest range {:#x}+{:#x} is not RAM", gpa, length));
}

void GuestMemory::zero(uint64_t gpa, uint64_t length) {
    std::span<std::byte> bytes = span(gpa, length);
    const uint64_t first_page = (gpa + abi::kPageSize - 1) & ~(abi::kPageSize - 1);
    const uint64_t end = gpa + length;
    const uint64_t last_page = end & ~(abi::kPageSize - 1);
    if (last_page <= first_page) {
        std::memset(bytes.data(), 0, length);
        return;
    }
    std::memset(bytes.data(), 0, first_page - gpa);
    std::memset(bytes.data() + (last_page - gpa), 0, end - last_page);
    const auto memfd_offset = static_cast<off_t>(bytes.data() + (first_page - gpa) -
                                                 static_cast<std::byte*>(mapping_.get()));
    if (::fallocate(memfd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, memfd_offset,
                    static_cast<off_t>(last_page - first_page)) < 0)
        std::memset(bytes.data() + (first_page - gpa), 0, last_page - first_page);  // no hole punching: write
}

void GuestMemory::register_with(Vm& vm) const {
    uint32_t slot = 0;
    for (const RamRegion& region : regions_) {
        auto* host = static_cast<std::byte*>(mapping_.get()) + region.memfd_offset;
        vm.set_memory_region(slot++, region.gpa, region.size, host);
    }
}

}  // namespace hvkvm::vmm
