#include "kvm/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

#include "hvkvm/abi/align.h"
#include "hvkvm/abi/boot.h"
#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

Mapping GuestMemory::map(int memfd, uint64_t bytes) {
    void* address = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
    if (address == MAP_FAILED) throw_errno(fmt::format("mmap {} MiB of guest RAM", bytes >> 20));
    return Mapping(address, bytes);
}

GuestMemory GuestMemory::create(const MemoryLayout& layout) {
    UniqueFd memfd(::memfd_create("hvkvm-guest-ram", MFD_CLOEXEC));
    if (!memfd.valid()) throw_errno("memfd_create for guest RAM");
    if (::ftruncate(memfd.get(), static_cast<off_t>(layout.ram_bytes())) < 0)
        throw_errno(fmt::format("ftruncate guest RAM to {} MiB", layout.ram_bytes() >> 20));
    Mapping mapping = map(memfd.get(), layout.ram_bytes());
    return GuestMemory(std::move(memfd), std::move(mapping), layout);
}

GuestMemory GuestMemory::attach(UniqueFd memfd, const MemoryLayout& layout) {
    struct stat status {};
    if (::fstat(memfd.get(), &status) < 0) throw_errno("fstat of the guest-RAM memfd");
    if (static_cast<uint64_t>(status.st_size) < layout.ram_bytes())
        throw HostError(EINVAL, fmt::format("guest-RAM memfd holds {} bytes, the layout needs {}", status.st_size,
                                            layout.ram_bytes()));
    Mapping mapping = map(memfd.get(), layout.ram_bytes());
    return GuestMemory(std::move(memfd), std::move(mapping), layout);
}

std::byte* GuestMemory::host_address(const RamRegion& region) const {
    return static_cast<std::byte*>(mapping_.get()) + region.memfd_offset;
}

std::optional<std::span<std::byte>> GuestMemory::translate(uint64_t gpa, uint64_t length) const {
    const RamRegion* region = layout_.region_containing(gpa, length);
    if (!region) return std::nullopt;
    return std::span<std::byte>(host_address(*region) + (gpa - region->gpa), length);
}

std::span<std::byte> GuestMemory::span(uint64_t gpa, uint64_t length) const {
    if (auto bytes = translate(gpa, length)) return *bytes;
    throw std::out_of_range(fmt::format("guest range {:#x}+{:#x} is not RAM", gpa, length));
}

void GuestMemory::zero(uint64_t gpa, uint64_t length) {
    std::span<std::byte> bytes = span(gpa, length);
    const uint64_t first_page = abi::align_up(gpa, abi::kPageSize);
    const uint64_t end = gpa + length;
    const uint64_t last_page = abi::align_down(end, abi::kPageSize);
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


}  // namespace hvkvm::vmm
