#include "exits/guest_code.h"

#include <algorithm>
#include <cstring>

#include "kvm/guest_memory.h"

namespace hvkvm::vmm {
namespace {

constexpr uint64_t kCr0Paging = 1ull << 31;
constexpr uint64_t kCr4FiveLevelPaging = 1ull << 12;  // LA57
constexpr uint64_t kEferLongModeActive = 1ull << 10;
constexpr uint64_t kEntryPresent = 1ull << 0;
constexpr uint64_t kEntryLargePage = 1ull << 7;
constexpr uint64_t kEntryAddress = 0x000ffffffffff000ull;  // bits 51:12
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kPageOffset = kPageSize - 1;

// One page-table entry, read once (an aligned 8-byte load, as the CPU's walker does).
std::optional<uint64_t> read_entry(const GuestMemory& memory, uint64_t gpa) {
    const auto bytes = memory.translate(gpa, sizeof(uint64_t));
    if (!bytes) return std::nullopt;
    return __atomic_load_n(reinterpret_cast<const uint64_t*>(bytes->data()), __ATOMIC_RELAXED);
}

bool is_canonical(uint64_t linear, unsigned address_bits) {
    const auto upper = static_cast<int64_t>(linear) >> (address_bits - 1);
    return upper == 0 || upper == -1;
}

// Copies `count` bytes at `gpa` into `out`; false unless they are all RAM.
bool copy_from(const GuestMemory& memory, uint64_t gpa, uint8_t* out, size_t count) {
    const auto bytes = memory.translate(gpa, count);
    if (!bytes) return false;
    std::memcpy(out, bytes->data(), count);
    return true;
}

}  // namespace

std::optional<uint64_t> guest_physical_address(const GuestMemory& memory, const PagingState& paging, uint64_t linear) {
    if (!(paging.efer & kEferLongModeActive) || !(paging.cr0 & kCr0Paging)) return std::nullopt;
    const unsigned levels = (paging.cr4 & kCr4FiveLevelPaging) ? 5 : 4;
    if (!is_canonical(linear, 12 + 9 * levels)) return std::nullopt;
    uint64_t table = paging.cr3 & kEntryAddress;
    for (unsigned level = levels; level >= 1; --level) {
        const unsigned shift = 12 + 9 * (level - 1);
        const auto entry = read_entry(memory, table + ((linear >> shift) & 511) * sizeof(uint64_t));
        if (!entry || !(*entry & kEntryPresent)) return std::nullopt;
        if (level == 1) return (*entry & kEntryAddress) + (linear & kPageOffset);
        if (*entry & kEntryLargePage) {
            if (level > 3) return std::nullopt;  // no pages larger than 1 GiB
            const uint64_t offset_mask = (1ull << shift) - 1;
            return (*entry & kEntryAddress & ~offset_mask) + (linear & offset_mask);
        }
        table = *entry & kEntryAddress;
    }
    return std::nullopt;
}

GuestCode read_guest_code(const GuestMemory& memory, const PagingState& paging, uint64_t rip) {
    GuestCode code;
    if (!paging.code_64bit) return code;
    const auto gpa = guest_physical_address(memory, paging, rip);
    const size_t in_first_page = std::min<uint64_t>(kMaxInstructionLength, kPageSize - (rip & kPageOffset));
    if (!gpa || !copy_from(memory, *gpa, code.bytes.data(), in_first_page)) return code;
    code.gpa = *gpa;
    code.length = in_first_page;
    if (in_first_page == kMaxInstructionLength) return code;
    const auto next = guest_physical_address(memory, paging, rip + in_first_page);
    const size_t rest = kMaxInstructionLength - in_first_page;
    if (next && copy_from(memory, *next, code.bytes.data() + in_first_page, rest)) code.length += rest;
    return code;
}

}  // namespace hvkvm::vmm
