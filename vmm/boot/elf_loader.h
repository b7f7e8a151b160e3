// Guest kernel ELF: parsed and validated completely before any VM exists (so a malformed kernel
// is a clean input error with nothing started), then copied into guest RAM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace hvkvm::vmm {

class GuestMemory;

class ElfError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KernelSegment {
    uint64_t gpa;          // physical = virtual: the kernel runs identity-mapped in the lower half
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t memory_size;  // >= file_size; the rest is .bss, zero-filled
    bool executable;
};

struct KernelImage {
    std::vector<std::byte> file;
    uint64_t entry = 0;
    std::vector<KernelSegment> segments;  // PT_LOAD segments with memory_size > 0, sorted by gpa
    uint64_t start = 0;                   // lowest segment GPA
    uint64_t end = 0;                     // one past the highest segment byte
};

// Validates an ELF64 x86-64 executable: header fields, program-header table bounds, every
// PT_LOAD segment's file range, addresses (>= 1 MiB, no overflow, no overlap, vaddr == paddr) and
// that the entry point is inside an executable segment. Throws ElfError saying what is wrong.
KernelImage parse_kernel_elf(std::vector<std::byte> file);

KernelImage read_kernel_elf(const std::filesystem::path& path);

// Throws ElfError unless the whole image fits in guest RAM below `ram_limit`.
void check_kernel_fits(const KernelImage& image, uint64_t ram_limit);

// Copies every segment into guest RAM and zero-fills its .bss part.
void load_kernel(const KernelImage& image, GuestMemory& memory);

}  // namespace hvkvm::vmm
