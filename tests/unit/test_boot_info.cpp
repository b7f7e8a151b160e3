// The boot ABI from both sides: what the VMM writes into guest RAM must pass the guest kernel's
// own validation (the same source file the guest runs), and describe memory consistently.
#include <catch2/catch.hpp>
#include <cstring>

#include "boot/acpi_tables.h"
#include "boot/boot_setup.h"
#include "boot/elf_loader.h"
#include "hvkvm/abi/boot.h"
#include "kernel/boot_info.h"
#include "config/config.h"
#include "kvm/guest_memory.h"

using namespace hvkvm;
using namespace hvkvm::vmm;

namespace {

KernelImage fake_kernel(uint64_t start, uint64_t end) {
    KernelImage image;
    image.start = start;
    image.end = end;
    image.entry = start;
    return image;
}

struct BootedMemory {
    GuestMemory memory;
    BootLayout layout;
    const abi::BootInfo& info() const { return memory.object_at<abi::BootInfo>(abi::kBootInfoGpa); }
    const char* cmdline() const { return reinterpret_cast<const char*>(memory.span(abi::kCmdlineGpa, 1).data()); }
};

BootedMemory boot(uint64_t memory_bytes, const std::string& cmdline = "test=*") {
    BootedMemory booted{GuestMemory::create(MemoryLayout::for_ram(memory_bytes)), {}};
    booted.layout = build_boot_page_tables(booted.memory);
    VmConfig config;
    config.machine.vcpus = 4;
    config.machine.memory_mib = memory_bytes >> 20;
    const AcpiPlacement acpi = write_acpi_tables(booted.memory, guest_topology(config, booted.memory.layout()), 4);
    write_boot_info(booted.memory, fake_kernel(0x100000, 0x345678), booted.layout,
                    BootParameters{4, abi::kBootFlagPvmHost | abi::kBootFlagUsePvm, 2600000, cmdline, acpi});
    return booted;
}

uint64_t total(const abi::BootInfo& info, abi::MemoryType type) {
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < info.memory_region_count; ++i)
        if (info.memory_regions[i].type == type) bytes += info.memory_regions[i].size;
    return bytes;
}

}  // namespace

TEST_CASE("boot info written by the VMM passes the guest's validation", "[boot-info]") {
    const BootedMemory booted = boot(256 << 20);
    const abi::BootInfo& info = booted.info();
    CHECK(guest::validate_boot_info(info, booted.cmdline()) == nullptr);
    CHECK(info.vcpu_count == 4);
    CHECK(info.tsc_khz == 2600000);
    CHECK(info.flags == (abi::kBootFlagPvmHost | abi::kBootFlagUsePvm));
    CHECK(std::string(booted.cmdline()) == "test=*");
    CHECK(info.cmdline_length == 6);
    CHECK(info.boot_page_tables_gpa == abi::kBootPageTablesGpa);
}

TEST_CASE("the memory map covers RAM exactly once", "[boot-info]") {
    for (uint64_t mib : {16ull, 256ull, 3072ull, 5120ull}) {
        INFO(mib << " MiB");
        const BootedMemory booted = boot(mib << 20);
        const abi::BootInfo& info = booted.info();
        uint64_t covered = 0;
        for (uint32_t i = 0; i < info.memory_region_count; ++i) covered += info.memory_regions[i].size;
        CHECK(covered == mib << 20);
        CHECK(total(info, abi::MemoryType::kKernelImage) == 0x346000 - 0x100000);
        CHECK(total(info, abi::MemoryType::kBootData) == booted.layout.page_tables_end - abi::kBootGdtGpa);
        CHECK(total(info, abi::MemoryType::kUsable) == (mib << 20) - 0x346000);
    }
}

TEST_CASE("RAM above 3 GiB is placed above the 32-bit MMIO hole", "[boot-info]") {
    const BootedMemory booted = boot(5120ull << 20);
    const abi::BootInfo& info = booted.info();
    const abi::MemoryRegion& last = info.memory_regions[info.memory_region_count - 1];
    CHECK(last.base == abi::kMmioHoleEnd);
    CHECK(last.size == 2048ull << 20);
    CHECK(last.type == abi::MemoryType::kUsable);
    CHECK_FALSE(booted.memory.translate(abi::kLocalApicGpa, 4));
}

TEST_CASE("boot page tables identity-map RAM and MMIO with U/S set at every level", "[boot-info]") {
    const BootedMemory booted = boot(5120ull << 20);
    const auto entry = [&](uint64_t table, uint64_t index) {
        return booted.memory.object_at<uint64_t>(table + index * 8);
    };
    const auto translate = [&](uint64_t address) -> uint64_t {
        const uint64_t pml4e = entry(booted.layout.page_tables_gpa, (address >> 39) & 511);
        REQUIRE((pml4e & 0x7) == 0x7);
        const uint64_t pdpte = entry(pml4e & ~0xfffull, (address >> 30) & 511);
        REQUIRE((pdpte & 0x7) == 0x7);
        const uint64_t pde = entry(pdpte & ~0xfffull, (address >> 21) & 511);
        REQUIRE((pde & 0x87) == 0x87);  // present, writable, user, 2 MiB
        return (pde & ~0x1fffffull & ((1ull << 52) - 1)) | (address & 0x1fffff);
    };
    CHECK(translate(0x100000) == 0x100000);
    CHECK(translate(0xbfe12345) == 0xbfe12345);
    CHECK(translate(abi::kLocalApicGpa) == abi::kLocalApicGpa);
    CHECK(translate(0x17fffffffull) == 0x17fffffffull);
    CHECK(booted.layout.page_tables_end <= abi::kBootPageTablesEnd);
}

TEST_CASE("the guest rejects damaged boot info", "[boot-info]") {
    BootedMemory booted = boot(64 << 20);
    auto& info = booted.memory.object_at<abi::BootInfo>(abi::kBootInfoGpa);
    const abi::BootInfo good = info;
    const auto problem = [&] { return std::string(guest::validate_boot_info(info, booted.cmdline()) ?: ""); };

    info.magic ^= 1;
    CHECK(problem() == "bad magic");
    info = good;
    info.version = 99;
    CHECK(problem() == "unsupported version");
    info = good;
    info.vcpu_count = 65;
    CHECK(problem() == "vCPU count out of range");
    info = good;
    info.memory_region_count = 33;
    CHECK(problem() == "memory region count out of range");
    info = good;
    info.cmdline_length = 2;  // the byte there is not NUL
    CHECK(problem() == "command line not where the ABI puts it, or not NUL-terminated");
    info = good;
    std::swap(info.memory_regions[0], info.memory_regions[1]);
    CHECK(problem() == "memory regions unsorted or overlapping");
    info = good;
    CHECK(problem().empty());
}

TEST_CASE("the guest checks where the boot info puts the ACPI tables", "[boot-info]") {
    BootedMemory booted = boot(64 << 20);
    auto& info = booted.memory.object_at<abi::BootInfo>(abi::kBootInfoGpa);
    const abi::BootInfo good = info;
    const auto problem = [&] { return std::string(guest::validate_boot_info(info, booted.cmdline()) ?: ""); };
    const std::string misplaced = "ACPI tables not where the ABI puts them, or larger than the space reserved";

    CHECK(good.acpi_tables_gpa == abi::kAcpiTablesGpa);
    CHECK(good.acpi_rsdp_gpa == abi::kAcpiTablesGpa);
    CHECK(good.acpi_tables_size > 0);
    info.acpi_tables_gpa = abi::kAcpiTablesGpa + 0x1000;
    CHECK(problem() == misplaced);
    info = good;
    info.acpi_tables_size = 0;
    CHECK(problem() == misplaced);
    info.acpi_tables_size = abi::kAcpiTablesMax;  // exact fit
    CHECK(problem().empty());
    info.acpi_tables_size = abi::kAcpiTablesMax + 1;
    CHECK(problem() == misplaced);
    info = good;
    info.acpi_rsdp_gpa = good.acpi_tables_gpa + good.acpi_tables_size - 1;  // last byte of the window
    CHECK(problem().empty());
    info.acpi_rsdp_gpa = good.acpi_tables_gpa + good.acpi_tables_size;
    CHECK(problem() == "ACPI RSDP outside the ACPI tables");
    info.acpi_rsdp_gpa = good.acpi_tables_gpa - 16;
    CHECK(problem() == "ACPI RSDP outside the ACPI tables");
}

TEST_CASE("boot info layout is the documented ABI", "[boot-info]") {
    // The header pins every offset with static_assert; this spells out the sizes a reader of
    // docs/abi.md relies on.
    CHECK(sizeof(abi::BootInfo) == 872);
    CHECK(sizeof(abi::GuestReport) == 24 + 8 * abi::kBootPhaseCount + 304 + 16 * 64);
    CHECK(sizeof(abi::CrashRecord) == 304);
    CHECK(abi::kGuestReportGpa - abi::kBootInfoGpa >= sizeof(abi::BootInfo));
}
