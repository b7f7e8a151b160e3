#include "boot/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>

#include "hvkvm/abi/boot.h"
#include "kvm/guest_memory.h"

namespace hvkvm::vmm {
namespace {

constexpr size_t kMaxProgramHeaders = 64;
constexpr uint64_t kMaxKernelFileSize = 256ull << 20;

// a + b without wrapping, or false.
bool checked_add(uint64_t a, uint64_t b, uint64_t& sum) { return !__builtin_add_overflow(a, b, &sum); }

template <typename T>
T read_struct(const std::vector<std::byte>& file, uint64_t offset) {
    T value;
    std::memcpy(&value, file.data() + offset, sizeof(T));  // copy once, then parse the copy
    return value;
}

void check_header(const Elf64_Ehdr& header, size_t file_size) {
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) throw ElfError("not an ELF file (bad magic)");
    if (header.e_ident[EI_CLASS] != ELFCLASS64) throw ElfError("not a 64-bit ELF file");
    if (header.e_ident[EI_DATA] != ELFDATA2LSB) throw ElfError("not a little-endian ELF file");
    if (header.e_ident[EI_VERSION] != EV_CURRENT || header.e_version != EV_CURRENT)
        throw ElfError("unsupported ELF version");
    if (header.e_machine != EM_X86_64)
        throw ElfError(fmt::format("not an x86-64 ELF file (e_machine {})", header.e_machine));
    if (header.e_type != ET_EXEC)
        throw ElfError(fmt::format("not a static executable (e_type {}; need ET_EXEC)", header.e_type));
    if (header.e_ehsize != sizeof(Elf64_Ehdr))
        throw ElfError(fmt::format("bad ELF header size {}", header.e_ehsize));
    if (header.e_phentsize != sizeof(Elf64_Phdr))
        throw ElfError(fmt::format("bad program header size {}", header.e_phentsize));
    if (header.e_phnum == 0 || header.e_phnum > kMaxProgramHeaders)
        throw ElfError(fmt::format("program header count {} is not 1..{}", header.e_phnum, kMaxProgramHeaders));
    uint64_t table_end;
    if (!checked_add(header.e_phoff, uint64_t{header.e_phnum} * sizeof(Elf64_Phdr), table_end) ||
        table_end > file_size)
        throw ElfError(fmt::format("program header table ({} entries at offset {:#x}) extends past end of file ({} bytes)",
                                   header.e_phnum, header.e_phoff, file_size));
}

KernelSegment check_load_segment(const Elf64_Phdr& ph, size_t index, size_t file_size) {
    const auto where = [&] { return fmt::format("program header {} (PT_LOAD at {:#x})", index, ph.p_paddr); };
    uint64_t file_end, memory_end;
    if (!checked_add(ph.p_offset, ph.p_filesz, file_end) || file_end > file_size)
        throw ElfError(fmt::format("{}: file range {:#x}+{:#x} extends past end of file ({} bytes)",
                                   where(), ph.p_offset, ph.p_filesz, file_size));
    if (ph.p_filesz > ph.p_memsz)
        throw ElfError(fmt::format("{}: file size {:#x} exceeds memory size {:#x}", where(), ph.p_filesz, ph.p_memsz));
    if (!checked_add(ph.p_paddr, ph.p_memsz, memory_end))
        throw ElfError(fmt::format("{}: address range overflows", where()));
    if (ph.p_vaddr != ph.p_paddr)
        throw ElfError(fmt::format("{}: virtual address {:#x} differs from physical; the kernel must be "
                                   "linked identity-mapped", where(), ph.p_vaddr));
    if (ph.p_paddr < abi::kKernelLoadMin)
        throw ElfError(fmt::format("{}: loads below {:#x}, where the VMM keeps boot structures",
                                   where(), abi::kKernelLoadMin));
    return KernelSegment{ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz, (ph.p_flags & PF_X) != 0};
}

void check_no_overlap(const std::vector<KernelSegment>& sorted) {
    for (size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i].gpa < sorted[i - 1].gpa + sorted[i - 1].memory_size)
            throw ElfError(fmt::format("segments at {:#x} and {:#x} overlap", sorted[i - 1].gpa, sorted[i].gpa));
    }
}

void check_entry(const KernelImage& image) {
    for (const auto& segment : image.segments) {
        if (segment.executable && image.entry >= segment.gpa && image.entry < segment.gpa + segment.file_size)
            return;
    }
    throw ElfError(fmt::format("entry point {:#x} is not inside an executable segment", image.entry));
}

}  // namespace

KernelImage parse_kernel_elf(std::vector<std::byte> file) {
    if (file.size() < sizeof(Elf64_Ehdr))
        throw ElfError(fmt::format("file too small for an ELF header ({} bytes)", file.size()));
    const auto header = read_struct<Elf64_Ehdr>(file, 0);
    check_header(header, file.size());

    KernelImage image;
    image.entry = header.e_entry;
    for (size_t i = 0; i < header.e_phnum; ++i) {
        const auto ph = read_struct<Elf64_Phdr>(file, header.e_phoff + i * sizeof(Elf64_Phdr));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        image.segments.push_back(check_load_segment(ph, i, file.size()));
    }
    if (image.segments.empty()) throw ElfError("no loadable segments");
    std::sort(image.segments.begin(), image.segments.end(),
              [](const auto& a, const auto& b) { return a.gpa < b.gpa; });
    check_no_overlap(image.segments);
    check_entry(image);
    image.start = image.segments.front().gpa;
    const auto& last = image.segments.back();
    image.end = last.gpa + last.memory_size;
    image.file = std::move(file);
    return image;
}

KernelImage read_kernel_elf(const std::filesystem::path& path) {
    std::ifstream stream(path, std::ios::binary | std::ios::ate);
    if (!stream) throw ElfError(fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
    const auto size = static_cast<uint64_t>(stream.tellg());
    if (size > kMaxKernelFileSize)
        throw ElfError(fmt::format("{} is {} MiB; kernels larger than {} MiB are refused", path.string(),
                                   size >> 20, kMaxKernelFileSize >> 20));
    std::vector<std::byte> bytes(size);
    stream.seekg(0);
    if (!stream.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
        throw ElfError(fmt::format("cannot read {}: short read", path.string()));
    return parse_kernel_elf(std::move(bytes));
}

void check_kernel_fits(const KernelImage& image, uint64_t ram_limit) {
    if (image.end > ram_limit)
        throw ElfError(fmt::format("kernel occupies {:#x}..{:#x} but guest RAM below the MMIO hole ends at {:#x}",
                                   image.start, image.end, ram_limit));
}

void load_kernel(const KernelImage& image, GuestMemory& memory) {
    for (const auto& segment : image.segments) {
        auto destination = memory.span(segment.gpa, segment.memory_size);
        std::memcpy(destination.data(), image.file.data() + segment.file_offset, segment.file_size);
        memory.zero(segment.gpa + segment.file_size, segment.memory_size - segment.file_size);
    }
}

}  // namespace hvkvm::vmm
