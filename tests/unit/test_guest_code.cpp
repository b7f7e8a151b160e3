// Reading guest code through the guest's own page tables (vmm/exits/guest_code.h).
#include <catch2/catch.hpp>
#include <cstring>

#include "exits/guest_code.h"
#include "kvm/guest_memory.h"

using namespace hvkvm::vmm;

namespace {

constexpr uint64_t kPresentWritable = 0x3;
constexpr uint64_t kLarge = 0x80;
constexpr uint64_t kCr0Paging = 1ull << 31, kCr4La57 = 1ull << 12, kEferLma = 1ull << 10;

// 16 MiB of guest RAM with page tables built by hand at 0x10000 upwards.
struct AddressSpace {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(16 << 20));
    uint64_t next_table = 0x10000;

    uint64_t new_table() {
        const uint64_t table = next_table;
        next_table += 4096;
        std::memset(memory.span(table, 4096).data(), 0, 4096);
        return table;
    }
    uint64_t& entry(uint64_t table, unsigned index) { return memory.object_at<uint64_t>(table + index * 8); }
    // Walks (creating tables) down to `level` for `linear`, returns the table holding its entry.
    uint64_t table_for(uint64_t root, unsigned levels, uint64_t linear, unsigned level) {
        uint64_t table = root;
        for (unsigned current = levels; current > level; --current) {
            uint64_t& e = entry(table, (linear >> (12 + 9 * (current - 1))) & 511);
            if (!(e & 1)) e = new_table() | kPresentWritable;
            table = e & ~0xfffull;
        }
        return table;
    }
    void map(uint64_t root, unsigned levels, uint64_t linear, uint64_t gpa, unsigned level = 1) {
        const uint64_t table = table_for(root, levels, linear, level);
        entry(table, (linear >> (12 + 9 * (level - 1))) & 511) = gpa | kPresentWritable | (level > 1 ? kLarge : 0);
    }
    static PagingState paging(uint64_t root, bool five_level = false) {
        return {kCr0Paging, root, five_level ? kCr4La57 : 0, kEferLma, true};
    }
};

}  // namespace

TEST_CASE("4 KiB, 2 MiB and 1 GiB pages translate", "[guest-code]") {
    AddressSpace space;
    const uint64_t root = space.new_table();
    space.map(root, 4, 0x7f0000401000, 0x123000);
    space.map(root, 4, 0x40000000, 0x600000, 2);
    space.map(root, 4, 0x8000000000, 0x80000000, 3);
    const PagingState paging = AddressSpace::paging(root);
    CHECK(guest_physical_address(space.memory, paging, 0x7f0000401abc) == 0x123abcu);
    CHECK(guest_physical_address(space.memory, paging, 0x401abcde) == 0x7abcdeu);
    CHECK(guest_physical_address(space.memory, paging, 0x8012345678) == 0x92345678u);
    CHECK_FALSE(guest_physical_address(space.memory, paging, 0x7f0000402000));  // not present
}

TEST_CASE("unusable translations are refused, not followed", "[guest-code]") {
    AddressSpace space;
    const uint64_t root = space.new_table();
    space.map(root, 4, 0x1000, 0x5000);
    PagingState paging = AddressSpace::paging(root);
    CHECK_FALSE(guest_physical_address(space.memory, paging, 0x0000800000000000));  // non-canonical
    space.entry(root, 1) = 0x40000000000ull | kPresentWritable;                    // a table outside RAM
    CHECK_FALSE(guest_physical_address(space.memory, paging, 0x8000000000));
    space.entry(root, 2) = 0x600000 | kPresentWritable | kLarge;                   // "512 GiB page": reserved
    CHECK_FALSE(guest_physical_address(space.memory, paging, 0x10000000000));
    PagingState no_paging = paging;
    no_paging.cr0 = 0;
    CHECK_FALSE(guest_physical_address(space.memory, no_paging, 0x1000));
    PagingState not_long_mode = paging;
    not_long_mode.efer = 0;
    CHECK_FALSE(guest_physical_address(space.memory, not_long_mode, 0x1000));
    paging.cr3 = 0x40000000000ull;  // the root itself outside RAM
    CHECK_FALSE(guest_physical_address(space.memory, paging, 0x1000));
}

TEST_CASE("five-level paging is walked when CR4.LA57 is set", "[guest-code]") {
    AddressSpace space;
    const uint64_t root = space.new_table();
    const uint64_t linear = 0x00ff000000001000ull;  // canonical with 57 bits, not with 48
    space.map(root, 5, linear, 0x7000);
    CHECK(guest_physical_address(space.memory, AddressSpace::paging(root, true), linear + 5) == 0x7005u);
    CHECK_FALSE(guest_physical_address(space.memory, AddressSpace::paging(root, false), linear));
}

TEST_CASE("code is read across a page boundary, and cut where the mapping ends", "[guest-code]") {
    AddressSpace space;
    const uint64_t root = space.new_table();
    space.map(root, 4, 0x400000, 0x200000);
    space.map(root, 4, 0x401000, 0x300000);  // the next page elsewhere in guest RAM
    std::memset(space.memory.span(0x200ff8, 8).data(), 0xaa, 8);
    std::memset(space.memory.span(0x300000, 8).data(), 0xbb, 8);
    const PagingState paging = AddressSpace::paging(root);
    const GuestCode across = read_guest_code(space.memory, paging, 0x400ff8);
    CHECK(across.gpa == 0x200ff8u);
    REQUIRE(across.length == kMaxInstructionLength);
    CHECK(across.bytes[7] == 0xaa);
    CHECK(across.bytes[8] == 0xbb);

    const GuestCode cut = read_guest_code(space.memory, paging, 0x401ffc);  // nothing mapped after
    CHECK(cut.length == 4);
    CHECK(read_guest_code(space.memory, paging, 0x402000).length == 0);
    PagingState compatibility = paging;
    compatibility.code_64bit = false;
    CHECK(read_guest_code(space.memory, compatibility, 0x400ff8).length == 0);
}
