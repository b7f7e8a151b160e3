#include <elf.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "boot/elf_loader.h"
#include "kvm/guest_memory.h"

using namespace hvkvm::vmm;

namespace {

// A small, valid kernel: one executable segment at 1 MiB with 16 bytes of code, one data segment
// at 1 MiB + 4 KiB with 8 bytes of file data and 4 KiB of memory (the rest is .bss).
struct TestElf {
    Elf64_Ehdr header{};
    Elf64_Phdr phdr[2]{};
    std::vector<std::byte> payload;

    TestElf() {
        std::memcpy(header.e_ident, ELFMAG, SELFMAG);
        header.e_ident[EI_CLASS] = ELFCLASS64;
        header.e_ident[EI_DATA] = ELFDATA2LSB;
        header.e_ident[EI_VERSION] = EV_CURRENT;
        header.e_type = ET_EXEC;
        header.e_machine = EM_X86_64;
        header.e_version = EV_CURRENT;
        header.e_entry = 0x100000;
        header.e_phoff = sizeof(Elf64_Ehdr);
        header.e_ehsize = sizeof(Elf64_Ehdr);
        header.e_phentsize = sizeof(Elf64_Phdr);
        header.e_phnum = 2;
        const uint64_t data_offset = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
        phdr[0] = {PT_LOAD, PF_R | PF_X, data_offset, 0x100000, 0x100000, 16, 16, 0x1000};
        phdr[1] = {PT_LOAD, PF_R | PF_W, data_offset + 16, 0x101000, 0x101000, 8, 0x1000, 0x1000};
        for (int i = 0; i < 24; ++i) payload.push_back(std::byte(0xa0 + i));
    }

    std::vector<std::byte> bytes() const {
        std::vector<std::byte> file(sizeof header + sizeof phdr);
        std::memcpy(file.data(), &header, sizeof header);
        std::memcpy(file.data() + sizeof header, phdr, sizeof phdr);
        file.insert(file.end(), payload.begin(), payload.end());
        return file;
    }
};

std::string rejection(const TestElf& elf) {
    try {
        parse_kernel_elf(elf.bytes());
        return "";
    } catch (const ElfError& error) {
        return error.what();
    }
}

}  // namespace

TEST_CASE("a valid kernel ELF is parsed", "[elf]") {
    const KernelImage image = parse_kernel_elf(TestElf().bytes());
    CHECK(image.entry == 0x100000);
    REQUIRE(image.segments.size() == 2);
    CHECK(image.segments[0].executable);
    CHECK_FALSE(image.segments[1].executable);
    CHECK(image.start == 0x100000);
    CHECK(image.end == 0x102000);
}

TEST_CASE("loading copies file bytes and zero-fills bss", "[elf]") {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(16 << 20));
    std::memset(memory.span(0x101000, 0x1000).data(), 0xff, 0x1000);  // stale data must be cleared
    load_kernel(parse_kernel_elf(TestElf().bytes()), memory);
    CHECK(memory.span(0x100000, 1)[0] == std::byte(0xa0));
    CHECK(memory.span(0x100000 + 15, 1)[0] == std::byte(0xaf));
    CHECK(memory.span(0x101000, 1)[0] == std::byte(0xb0));
    CHECK(memory.span(0x101007, 1)[0] == std::byte(0xb7));
    const auto bss = memory.span(0x101008, 0x1000 - 8);
    CHECK(std::all_of(bss.begin(), bss.end(), [](std::byte b) { return b == std::byte(0); }));
}

TEST_CASE("corrupt ELF files are rejected with a reason", "[elf]") {
    TestElf elf;
    SECTION("empty file") { CHECK_THROWS_WITH(parse_kernel_elf({}), "file too small for an ELF header (0 bytes)"); }
    SECTION("truncated header") {
        auto bytes = elf.bytes();
        bytes.resize(20);
        CHECK_THROWS_WITH(parse_kernel_elf(bytes), "file too small for an ELF header (20 bytes)");
    }
    SECTION("bad magic") {
        elf.header.e_ident[1] = 'X';
        CHECK(rejection(elf) == "not an ELF file (bad magic)");
    }
    SECTION("32-bit") {
        elf.header.e_ident[EI_CLASS] = ELFCLASS32;
        CHECK(rejection(elf) == "not a 64-bit ELF file");
    }
    SECTION("big-endian") {
        elf.header.e_ident[EI_DATA] = ELFDATA2MSB;
        CHECK(rejection(elf) == "not a little-endian ELF file");
    }
    SECTION("wrong machine") {
        elf.header.e_machine = EM_AARCH64;
        CHECK(rejection(elf) == "not an x86-64 ELF file (e_machine 183)");
    }
    SECTION("shared object") {
        elf.header.e_type = ET_DYN;
        CHECK(rejection(elf) == "not a static executable (e_type 3; need ET_EXEC)");
    }
    SECTION("bad program header size") {
        elf.header.e_phentsize = 40;
        CHECK(rejection(elf) == "bad program header size 40");
    }
    SECTION("no program headers") {
        elf.header.e_phnum = 0;
        CHECK(rejection(elf) == "program header count 0 is not 1..64");
    }
    SECTION("program header table past end of file") {
        elf.header.e_phoff = 1 << 20;
        CHECK_THAT(rejection(elf), Catch::StartsWith("program header table (2 entries at offset 0x100000) extends past end"));
    }
    SECTION("program header offset overflows") {
        elf.header.e_phoff = ~0ull - 10;
        CHECK_THAT(rejection(elf), Catch::Contains("extends past end of file"));
    }
    SECTION("segment data past end of file") {
        elf.phdr[1].p_filesz = 4096;
        CHECK_THAT(rejection(elf), Catch::StartsWith("program header 1 (PT_LOAD at 0x101000): file range") &&
                                       Catch::Contains("extends past end of file"));
    }
    SECTION("segment offset overflows") {
        elf.phdr[0].p_offset = ~0ull;
        CHECK_THAT(rejection(elf), Catch::Contains("extends past end of file"));
    }
    SECTION("file size larger than memory size") {
        elf.phdr[1].p_memsz = 4;
        CHECK(rejection(elf) == "program header 1 (PT_LOAD at 0x101000): file size 0x8 exceeds memory size 0x4");
    }
    SECTION("address range overflows") {
        elf.phdr[1].p_paddr = elf.phdr[1].p_vaddr = ~0ull - 16;
        CHECK_THAT(rejection(elf), Catch::EndsWith("address range overflows"));
    }
    SECTION("virtual and physical addresses differ") {
        elf.phdr[1].p_vaddr = 0xffffffff80101000;
        CHECK_THAT(rejection(elf), Catch::Contains("differs from physical"));
    }
    SECTION("loads below 1 MiB") {
        elf.phdr[1].p_paddr = elf.phdr[1].p_vaddr = 0x8000;
        CHECK_THAT(rejection(elf), Catch::Contains("loads below 0x100000"));
    }
    SECTION("overlapping segments") {
        elf.phdr[1].p_paddr = elf.phdr[1].p_vaddr = 0x100008;
        CHECK(rejection(elf) == "segments at 0x100000 and 0x100008 overlap");
    }
    SECTION("no loadable segment") {
        elf.phdr[0].p_type = PT_NOTE;
        elf.phdr[1].p_type = PT_NOTE;
        CHECK(rejection(elf) == "no loadable segments");
    }
    SECTION("entry outside code") {
        elf.header.e_entry = 0x101000;  // the data segment
        CHECK(rejection(elf) == "entry point 0x101000 is not inside an executable segment");
    }
}

TEST_CASE("the entry point may be the code segment's last byte, not one past it", "[elf]") {
    TestElf elf;  // code: 16 bytes at 0x100000
    elf.header.e_entry = 0x100000 + 15;
    CHECK(rejection(elf).empty());
    elf.header.e_entry = 0x100000 + 16;
    CHECK(rejection(elf) == "entry point 0x100010 is not inside an executable segment");
    elf.header.e_entry = 0x100000 - 1;
    CHECK(rejection(elf) == "entry point 0xfffff is not inside an executable segment");
    // An executable segment's .bss part holds no code: the entry must be in its file bytes.
    elf.phdr[0].p_memsz = 32;
    elf.header.e_entry = 0x100000 + 16;
    CHECK(rejection(elf) == "entry point 0x100010 is not inside an executable segment");
}

TEST_CASE("a kernel must fit in guest RAM", "[elf]") {
    const KernelImage image = parse_kernel_elf(TestElf().bytes());
    CHECK_NOTHROW(check_kernel_fits(image, 0x102000));  // ends exactly at the limit
    CHECK_THROWS(check_kernel_fits(image, 0x102000 - 1));
    CHECK_THROWS_WITH(check_kernel_fits(image, 0x101800), Catch::Contains("but guest RAM below the MMIO hole ends at 0x101800"));
}

TEST_CASE("read_kernel_elf reports missing files", "[elf]") {
    CHECK_THROWS_WITH(read_kernel_elf("/nonexistent/kernel.elf"),
                      "cannot read /nonexistent/kernel.elf: No such file or directory");
}

TEST_CASE("the built guest kernel passes the loader's checks", "[elf]") {
    const KernelImage image = read_kernel_elf(GUEST_KERNEL_ELF);
    CHECK(image.start == 0x100000);
    CHECK(image.end > image.start);
    CHECK(std::any_of(image.segments.begin(), image.segments.end(), [](auto& s) { return s.executable; }));
}
