// Guest RAM layout: regions around the MMIO hole, per NUMA node, and attaching a second mapping
// (as the root partition does) to the same memfd.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "hvkvm/abi/boot.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm_error.h"
#include "kvm/memory_layout.h"

using namespace hvkvm;
using namespace hvkvm::vmm;

namespace {
constexpr uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;
}

TEST_CASE("RAM below the MMIO hole is one region; exactly 3 GiB still is", "[memory]") {
    const MemoryLayout small = MemoryLayout::for_ram(256 * kMiB);
    REQUIRE(small.ram().size() == 1);
    CHECK(small.ram()[0] == RamRegion{0, 256 * kMiB, 0, 0});
    const MemoryLayout fits = MemoryLayout::for_ram(3 * kGiB);  // exact fit below the hole
    REQUIRE(fits.ram().size() == 1);
    CHECK(fits.ram()[0].gpa_end() == abi::kMmioHoleStart);
    const MemoryLayout over = MemoryLayout::for_ram(3 * kGiB + 2 * kMiB);  // one large page past it
    REQUIRE(over.ram().size() == 2);
    CHECK(over.ram()[1] == RamRegion{abi::kMmioHoleEnd, 2 * kMiB, 3 * kGiB, 0});
    CHECK(over.ram_bytes() == 3 * kGiB + 2 * kMiB);
}

TEST_CASE("NUMA nodes get consecutive regions; a node straddling the hole is split", "[memory][numa]") {
    const uint64_t nodes[] = {2 * kGiB, 2 * kGiB, 512 * kMiB};
    const MemoryLayout layout = MemoryLayout::for_nodes(nodes);
    REQUIRE(layout.ram().size() == 4);
    CHECK(layout.ram()[0] == RamRegion{0, 2 * kGiB, 0, 0});
    CHECK(layout.ram()[1] == RamRegion{2 * kGiB, 1 * kGiB, 2 * kGiB, 1});
    CHECK(layout.ram()[2] == RamRegion{abi::kMmioHoleEnd, 1 * kGiB, 3 * kGiB, 1});
    CHECK(layout.ram()[3] == RamRegion{abi::kMmioHoleEnd + kGiB, 512 * kMiB, 4 * kGiB, 2});
    CHECK(layout.node_count() == 3);
    CHECK(layout.ram_bytes() == 4 * kGiB + 512 * kMiB);
}

TEST_CASE("layout sizes must be non-zero multiples of 2 MiB", "[memory]") {
    CHECK_THROWS_AS(MemoryLayout::for_ram(0), std::invalid_argument);
    CHECK_THROWS_AS(MemoryLayout::for_ram(3 * kMiB), std::invalid_argument);
    const uint64_t nodes[] = {2 * kMiB, 0};
    CHECK_THROWS_AS(MemoryLayout::for_nodes(nodes), std::invalid_argument);
    CHECK_THROWS_AS(MemoryLayout::for_nodes({}), std::invalid_argument);
}

TEST_CASE("region_containing: exact fit at a region's end, one byte past, and wrap-around", "[memory]") {
    const MemoryLayout layout = MemoryLayout::for_ram(3 * kGiB + 2 * kMiB);
    CHECK(layout.region_containing(abi::kMmioHoleStart - 8, 8) == &layout.ram()[0]);
    CHECK(layout.region_containing(abi::kMmioHoleStart - 8, 9) == nullptr);  // into the hole
    CHECK(layout.region_containing(abi::kMmioHoleStart, 1) == nullptr);
    CHECK(layout.region_containing(abi::kMmioHoleEnd + 2 * kMiB - 1, 1) == &layout.ram()[1]);
    CHECK(layout.region_containing(abi::kMmioHoleEnd + 2 * kMiB, 1) == nullptr);
    CHECK(layout.region_containing(0x1000, ~0ull) == nullptr);  // would wrap
}

TEST_CASE("a second mapping attached to the memfd sees the same guest RAM", "[memory]") {
    const MemoryLayout layout = MemoryLayout::for_nodes(std::vector<uint64_t>{4 * kMiB, 4 * kMiB});
    GuestMemory created = GuestMemory::create(layout);
    GuestMemory attached = GuestMemory::attach(UniqueFd(::fcntl(created.memfd(), F_DUPFD_CLOEXEC, 0)), layout);
    created.object_at<uint64_t>(6 * kMiB) = 0x1122334455667788ull;
    CHECK(attached.object_at<uint64_t>(6 * kMiB) == 0x1122334455667788ull);
    attached.object_at<uint32_t>(0x1000) = 42;
    CHECK(created.object_at<uint32_t>(0x1000) == 42);
    CHECK(attached.layout() == layout);
}

TEST_CASE("attaching to a memfd smaller than the layout is refused", "[memory]") {
    GuestMemory small = GuestMemory::create(MemoryLayout::for_ram(4 * kMiB));
    CHECK_THROWS_AS(GuestMemory::attach(UniqueFd(::fcntl(small.memfd(), F_DUPFD_CLOEXEC, 0)),
                                        MemoryLayout::for_ram(6 * kMiB)),
                    HostError);
}
