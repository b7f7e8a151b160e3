#include "boot/boot_setup.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>
#include <vector>

#include "boot/elf_loader.h"
#include "hvkvm/abi/boot.h"
#include "kvm/guest_memory.h"

namespace hvkvm::vmm {
namespace {

using namespace hvkvm::abi;

constexpr uint64_t kPresent = 1u << 0, kWritable = 1u << 1, kUser = 1u << 2;
constexpr uint64_t kWriteThrough = 1u << 3, kCacheDisable = 1u << 4, kLargePage = 1u << 7;
constexpr uint64_t kTableFlags = kPresent | kWritable | kUser;
constexpr uint64_t kGiB = 1ull << 30;

constexpr uint64_t kCr0Pe = 1u << 0, kCr0Mp = 1u << 1, kCr0Et = 1u << 4, kCr0Ne = 1u << 5;
constexpr uint64_t kCr0Wp = 1u << 16, kCr0Am = 1u << 18, kCr0Pg = 1u << 31;
constexpr uint64_t kCr4Pae = 1u << 5;
constexpr uint64_t kEferSce = 1u << 0, kEferLme = 1u << 8, kEferLma = 1u << 10, kEferNxe = 1u << 11;

// GDT descriptors matching the segments loaded by long_mode_sregs().
constexpr uint64_t kGdtCode64 = 0x00af9b000000ffffull;  // P, DPL0, code exec/read accessed, L, G
constexpr uint64_t kGdtData = 0x00cf93000000ffffull;    // P, DPL0, data read/write accessed, D/B, G

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }

struct PageTableAllocator {
    GuestMemory& memory;
    uint64_t next;
    uint64_t allocate() {
        if (next + kPageSize > kBootPageTablesEnd)
            throw std::length_error("boot page tables do not fit below the EBDA");
        uint64_t page = next;
        next += kPageSize;
        std::memset(memory.span(page, kPageSize).data(), 0, kPageSize);
        return page;
    }
};

void append_region(std::vector<MemoryRegion>& regions, uint64_t base, uint64_t end, MemoryType type) {
    if (end > base) regions.push_back({base, end - base, type, 0});
}

}  // namespace

BootLayout build_boot_page_tables(GuestMemory& memory) {
    PageTableAllocator allocator{memory, kBootPageTablesGpa};
    const uint64_t pml4_gpa = allocator.allocate();
    auto* pml4 = reinterpret_cast<uint64_t*>(memory.span(pml4_gpa, kPageSize).data());

    uint64_t top = kMmioHoleEnd;  // always map the 32-bit MMIO hole
    for (const auto& region : memory.regions()) top = std::max(top, region.gpa_end());

    uint64_t* pdpt = nullptr;
    for (uint64_t gib = 0; gib * kGiB < top; ++gib) {
        if (gib % 512 == 0) {
            const uint64_t pdpt_gpa = allocator.allocate();
            pml4[gib / 512] = pdpt_gpa | kTableFlags;
            pdpt = reinterpret_cast<uint64_t*>(memory.span(pdpt_gpa, kPageSize).data());
        }
        const uint64_t pd_gpa = allocator.allocate();
        pdpt[gib % 512] = pd_gpa | kTableFlags;
        auto* pd = reinterpret_cast<uint64_t*>(memory.span(pd_gpa, kPageSize).data());
        for (uint64_t i = 0; i < 512; ++i) {
            const uint64_t address = gib * kGiB + i * kLargePageSize;
            const bool mmio = address >= kMmioHoleStart && address < kMmioHoleEnd;
            if (mmio || memory.translate(address, kLargePageSize))
                pd[i] = address | kTableFlags | kLargePage | (mmio ? kCacheDisable | kWriteThrough : 0);
        }
    }
    return BootLayout{pml4_gpa, allocator.next};
}

void write_boot_gdt(GuestMemory& memory) {
    auto* gdt = reinterpret_cast<uint64_t*>(memory.span(kBootGdtGpa, 3 * sizeof(uint64_t)).data());
    gdt[0] = 0;
    gdt[kBootCodeSelector / 8] = kGdtCode64;
    gdt[kBootDataSelector / 8] = kGdtData;
}

void write_boot_info(GuestMemory& memory, const KernelImage& kernel, const BootLayout& layout,
                     const BootParameters& parameters) {
    if (parameters.cmdline.size() >= kCmdlineMax)
        throw std::length_error(fmt::format("kernel command line exceeds {} bytes", kCmdlineMax - 1));
    auto cmdline = memory.span(kCmdlineGpa, kCmdlineMax);
    std::memset(cmdline.data(), 0, cmdline.size());
    std::memcpy(cmdline.data(), parameters.cmdline.data(), parameters.cmdline.size());

    std::memset(memory.span(kGuestReportGpa, kPageSize).data(), 0, kPageSize);

    std::vector<MemoryRegion> regions;
    const uint64_t kernel_end = align_up(kernel.end, kPageSize);
    append_region(regions, 0, kBootGdtGpa, MemoryType::kReserved);
    append_region(regions, kBootGdtGpa, layout.page_tables_end, MemoryType::kBootData);
    append_region(regions, layout.page_tables_end, kKernelLoadMin, MemoryType::kReserved);
    append_region(regions, kKernelLoadMin, kernel.start, MemoryType::kUsable);
    append_region(regions, kernel.start, kernel_end, MemoryType::kKernelImage);
    for (const auto& ram : memory.regions())
        append_region(regions, std::max(ram.gpa, kernel_end), ram.gpa_end(), MemoryType::kUsable);
    if (regions.size() > kMaxMemoryRegions) throw std::length_error("too many memory regions");

    BootInfo& info = memory.object_at<BootInfo>(kBootInfoGpa);
    std::memset(&info, 0, sizeof info);
    info.magic = kBootInfoMagic;
    info.version = kBootInfoVersion;
    info.size = sizeof(BootInfo);
    info.flags = parameters.boot_flags;
    info.vcpu_count = parameters.vcpu_count;
    info.tsc_khz = parameters.tsc_khz;
    info.memory_bytes = memory.size();
    info.cmdline_gpa = kCmdlineGpa;
    info.cmdline_length = static_cast<uint32_t>(parameters.cmdline.size());
    info.memory_region_count = static_cast<uint32_t>(regions.size());
    info.kernel_start = kernel.start;
    info.kernel_end = kernel.end;
    info.boot_page_tables_gpa = layout.page_tables_gpa;
    std::copy(regions.begin(), regions.end(), info.memory_regions);
    info.acpi_rsdp_gpa = parameters.acpi.rsdp_gpa;
    info.acpi_tables_gpa = parameters.acpi.tables_gpa;
    info.acpi_tables_size = parameters.acpi.tables_size;
}

kvm_sregs long_mode_sregs(kvm_sregs sregs, uint64_t cr3) {
    kvm_segment code{};
    code.base = 0;
    code.limit = 0xffffffff;
    code.selector = kBootCodeSelector;
    code.type = 11;  // execute/read, accessed
    code.present = 1;
    code.s = 1;
    code.l = 1;
    code.g = 1;
    kvm_segment data = code;
    data.selector = kBootDataSelector;
    data.type = 3;  // read/write, accessed
    data.l = 0;
    data.db = 1;

    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = kBootGdtGpa;
    sregs.gdt.limit = 3 * 8 - 1;
    sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Am | kCr0Pg;
    sregs.cr3 = cr3;
    sregs.cr4 = kCr4Pae;
    sregs.efer = kEferSce | kEferLme | kEferLma | kEferNxe;
    return sregs;
}

kvm_regs entry_regs(uint64_t entry, uint32_t vcpu_index) {
    kvm_regs regs{};
    regs.rip = entry;
    regs.rflags = 0x2;  // bit 1 is reserved-one; IF clear
    regs.rdi = kBootInfoGpa;
    regs.rsi = vcpu_index;
    return regs;
}

namespace {

bool is_canonical(uint64_t address) {
    const auto upper = static_cast<int64_t>(address) >> 47;
    return upper == 0 || upper == -1;
}

}  // namespace

VcpuStartStatus check_start_request(const VcpuStartRequest& request, uint32_t vcpu_count,
                                    const GuestMemory& memory) {
    if (request.vcpu_index == 0 || request.vcpu_index >= vcpu_count) return VcpuStartStatus::kInvalidVcpu;
    if (!is_canonical(request.rip) || !is_canonical(request.rsp) || request.cr3 % kPageSize != 0 ||
        !memory.translate(request.cr3, kPageSize))
        return VcpuStartStatus::kInvalidState;
    return VcpuStartStatus::kStarted;
}

kvm_regs start_regs(const VcpuStartRequest& request) {
    kvm_regs regs = entry_regs(request.rip, request.vcpu_index);
    regs.rsp = request.rsp;
    regs.rdi = request.argument;
    return regs;
}

}  // namespace hvkvm::vmm
