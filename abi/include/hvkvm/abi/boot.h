// The VMM <-> guest boot ABI: where the VMM puts things in guest physical memory, the boot-info
// structure it hands to the guest, the structure the guest fills in for the VMM to read back
// (boot timeline, crash record), and the I/O ports of the debug device.
//
// This header is compiled by both the host VMM and the freestanding guest kernel, so it uses only
// fixed-width integer types and no library facilities. Every size and offset is pinned with
// static_assert: changing the layout is an ABI break and must bump kBootInfoVersion.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::abi {

// ---------------------------------------------------------------------------------------------
// Guest physical layout at boot (all below the kernel's load address, reported as BootData)
// ---------------------------------------------------------------------------------------------
inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kLargePageSize = 2ull << 20;

inline constexpr uint64_t kBootGdtGpa = 0x1000;          // VMM's minimal boot GDT
inline constexpr uint64_t kBootInfoGpa = 0x2000;         // struct BootInfo (one page)
inline constexpr uint64_t kGuestReportGpa = 0x3000;      // struct GuestReport (one page)
inline constexpr uint64_t kCmdlineGpa = 0x4000;          // NUL-terminated kernel command line
inline constexpr uint64_t kCmdlineMax = 4096;            // including the NUL
inline constexpr uint64_t kAcpiTablesGpa = 0x5000;       // ACPI tables, RSDP first (docs/numa.md)
inline constexpr uint64_t kAcpiTablesMax = 0x2000;       // bytes reserved for them
inline constexpr uint64_t kBootPageTablesGpa = 0x10000;  // PML4, PDPTs, PDs built by the VMM
inline constexpr uint64_t kBootPageTablesEnd = 0x9f000;  // below the legacy EBDA/VGA hole
inline constexpr uint64_t kKernelLoadMin = 0x100000;     // ELF segments must start at/above 1 MiB
static_assert(kCmdlineGpa + kCmdlineMax <= kAcpiTablesGpa);
static_assert(kAcpiTablesGpa + kAcpiTablesMax <= kBootPageTablesGpa);

// Guest RAM above 3 GiB is placed at 4 GiB, leaving the usual 32-bit MMIO hole (LAPIC, IOAPIC).
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;
inline constexpr uint64_t kIoApicGpa = 0xfec00000;
inline constexpr uint64_t kLocalApicGpa = 0xfee00000;

// Boot GDT selectors the VMM uses for the initial long-mode state. The guest loads its own GDT
// early; these only have to be valid until then.
inline constexpr uint16_t kBootCodeSelector = 0x08;
inline constexpr uint16_t kBootDataSelector = 0x10;

// ---------------------------------------------------------------------------------------------
// Entry convention (every vCPU that the VMM starts):
//   64-bit long mode, CPL0, paging on with the VMM's identity map of all RAM (2 MiB pages,
//   U/S=1 at every level, as PVM hosts require), interrupts disabled, rdi = kBootInfoGpa,
//   rsi = vCPU index, rsp = 0 (the guest sets up its own stack before using it).
//   Every loadable segment has been copied and its .bss zeroed by the VMM.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Debug device: guest -> VMM control ports (each access is one PIO exit)
// ---------------------------------------------------------------------------------------------
inline constexpr uint16_t kDebugExitPort = 0x00f4;       // 32-bit write: GuestExitCode
inline constexpr uint16_t kBootMilestonePort = 0x00f8;   // 32-bit write: BootPhase just reached
inline constexpr uint16_t kStartVcpuPort = 0x00fc;       // 32-bit write: GPA of a VcpuStartRequest

// 32-bit write: StatsWindowCommand. The VMM takes KVM's vCPU counters when the guest opens and
// closes a measurement window and reports the difference, so that a benchmark's exits and
// interrupts per I/O are its workload's alone (two exits per window, next to thousands measured).
inline constexpr uint16_t kStatsWindowPort = 0x00ec;

enum class StatsWindowCommand : uint32_t {
    kOpen = 1,   // (re)start the window: counters now
    kClose = 2,  // end it: the report shows the difference (the last window closed)
};

enum class GuestExitCode : uint32_t {
    kSuccess = 0,  // the guest finished its work successfully
    kFailure = 1,  // the guest finished, but its work failed (e.g. in-guest tests failed)
    kCrash = 2,    // unhandled exception or panic; details in GuestReport::crash
};

// ---------------------------------------------------------------------------------------------
// Starting another vCPU (modelled on Hyper-V's HvCallStartVirtualProcessor): the guest fills a
// VcpuStartRequest (8-byte aligned, below 4 GiB) and writes its GPA to kStartVcpuPort. The VMM
// copies it once, validates it, starts the vCPU in the entry state described above but with
// this RIP, RSP, CR3 and rdi = argument, rsi = vcpu_index, and writes the result to `status`
// before the port write completes.
// ---------------------------------------------------------------------------------------------
enum class VcpuStartStatus : uint32_t {
    kStarted = 0,
    kPending = 1,         // what the guest writes before the request; never a VMM answer
    kInvalidRequest = 2,  // request GPA not RAM or misaligned
    kInvalidVcpu = 3,     // index is 0 (the boot vCPU) or beyond vcpu_count
    kAlreadyStarted = 4,
    kInvalidState = 5,    // RIP or RSP not canonical, CR3 not a page-aligned RAM address
};

struct VcpuStartRequest {
    uint32_t vcpu_index;
    VcpuStartStatus status;  // written by the VMM
    uint64_t rip;
    uint64_t rsp;
    uint64_t cr3;
    uint64_t argument;       // passed in rdi
};
static_assert(offsetof(VcpuStartRequest, vcpu_index) == 0);
static_assert(offsetof(VcpuStartRequest, status) == 4);
static_assert(offsetof(VcpuStartRequest, rip) == 8);
static_assert(offsetof(VcpuStartRequest, rsp) == 16);
static_assert(offsetof(VcpuStartRequest, cr3) == 24);
static_assert(offsetof(VcpuStartRequest, argument) == 32);
static_assert(sizeof(VcpuStartRequest) == 40);

// ---------------------------------------------------------------------------------------------
// Boot info: VMM -> guest, read-only for the guest
// ---------------------------------------------------------------------------------------------
inline constexpr uint64_t kBootInfoMagic = 0x314f464e49564b48ull;  // "HKVINFO1" little-endian
inline constexpr uint32_t kBootInfoVersion = 2;  // 2: the ACPI tables' location
inline constexpr uint32_t kMaxMemoryRegions = 32;
inline constexpr uint32_t kMaxVcpus = 64;

enum BootFlags : uint32_t {
    kBootFlagPvmHost = 1u << 0,   // the host's KVM is PVM (module kvm_pvm)
    kBootFlagUsePvm = 1u << 1,    // the guest must convert every vCPU to PVM mode
};

enum class MemoryType : uint32_t {
    kUsable = 1,       // free RAM
    kKernelImage = 2,  // the loaded kernel ELF (code, data, bss)
    kBootData = 3,     // VMM-built structures: GDT, boot info, report page, cmdline, page tables
    kReserved = 4,     // RAM the guest must not touch
};

struct MemoryRegion {
    uint64_t base;
    uint64_t size;
    MemoryType type;
    uint32_t reserved;
};
static_assert(sizeof(MemoryRegion) == 24);
static_assert(offsetof(MemoryRegion, base) == 0);
static_assert(offsetof(MemoryRegion, size) == 8);
static_assert(offsetof(MemoryRegion, type) == 16);

struct BootInfo {
    uint64_t magic;                // kBootInfoMagic
    uint32_t version;              // kBootInfoVersion
    uint32_t size;                 // sizeof(BootInfo)
    uint32_t flags;                // BootFlags
    uint32_t vcpu_count;           // 1..kMaxVcpus
    uint64_t tsc_khz;              // guest TSC frequency (0 if unknown)
    uint64_t memory_bytes;         // total guest RAM
    uint64_t cmdline_gpa;          // kCmdlineGpa
    uint32_t cmdline_length;       // bytes, excluding the NUL
    uint32_t memory_region_count;  // entries used in memory_regions, sorted by base
    uint64_t kernel_start;         // lowest GPA of the kernel image
    uint64_t kernel_end;           // one past the highest GPA of the kernel image (incl. bss)
    uint64_t boot_page_tables_gpa; // CR3 at entry
    MemoryRegion memory_regions[kMaxMemoryRegions];
    // The ACPI tables (MADT, SRAT, SLIT: CPUs, NUMA nodes, distances) lie in
    // [acpi_tables_gpa, + acpi_tables_size); the guest reads nothing of them outside that window.
    uint64_t acpi_rsdp_gpa;        // the RSDP (revision 2), inside the window
    uint64_t acpi_tables_gpa;      // kAcpiTablesGpa
    uint64_t acpi_tables_size;     // 1..kAcpiTablesMax
};
static_assert(offsetof(BootInfo, magic) == 0);
static_assert(offsetof(BootInfo, version) == 8);
static_assert(offsetof(BootInfo, size) == 12);
static_assert(offsetof(BootInfo, flags) == 16);
static_assert(offsetof(BootInfo, vcpu_count) == 20);
static_assert(offsetof(BootInfo, tsc_khz) == 24);
static_assert(offsetof(BootInfo, memory_bytes) == 32);
static_assert(offsetof(BootInfo, cmdline_gpa) == 40);
static_assert(offsetof(BootInfo, cmdline_length) == 48);
static_assert(offsetof(BootInfo, memory_region_count) == 52);
static_assert(offsetof(BootInfo, kernel_start) == 56);
static_assert(offsetof(BootInfo, kernel_end) == 64);
static_assert(offsetof(BootInfo, boot_page_tables_gpa) == 72);
static_assert(offsetof(BootInfo, memory_regions) == 80);
static_assert(offsetof(BootInfo, acpi_rsdp_gpa) == 80 + 24 * kMaxMemoryRegions);
static_assert(offsetof(BootInfo, acpi_tables_gpa) == 88 + 24 * kMaxMemoryRegions);
static_assert(offsetof(BootInfo, acpi_tables_size) == 96 + 24 * kMaxMemoryRegions);
static_assert(sizeof(BootInfo) == 104 + 24 * kMaxMemoryRegions);
static_assert(sizeof(BootInfo) <= kPageSize);

// ---------------------------------------------------------------------------------------------
// Guest report: guest -> VMM. The VMM reads it only after the guest stops (or at a milestone
// exit) and treats every field as untrusted.
// ---------------------------------------------------------------------------------------------
inline constexpr uint64_t kGuestReportMagic = 0x3254504552564b48ull;  // "HKVREPT2" (2: NUMA counters)

// Phases of the boot timeline. The guest stores its TSC in GuestReport::phase_tsc[phase] when it
// reaches a phase; for phases marked "milestone" it then writes the phase to kBootMilestonePort so
// that the VMM can pair the guest TSC with its own clock.
enum class BootPhase : uint32_t {
    kGuestEntry = 0,      // milestone: first instructions of the kernel
    kCpuConverted = 1,    // descriptors loaded, vCPU in PVM mode (or classic mode chosen)
    kConsoleReady = 2,
    kMemoryReady = 3,     // physical allocator and heap initialised
    kInterruptsReady = 4, // LAPIC, timers
    kSchedulerReady = 5,
    kSecondaryCpusUp = 6, // every AP online
    kKernelMain = 7,      // milestone: kernel_main entered; the kernel is ready for work
    kCount = 8,
};
inline constexpr uint32_t kBootPhaseCount = static_cast<uint32_t>(BootPhase::kCount);

enum class CrashKind : uint32_t {
    kNone = 0,
    kException = 1,  // unhandled CPU exception: vector, error_code, rip, cr2, registers valid
    kPanic = 2,      // kernel panic: message and rip (caller) valid
};

// General-purpose registers at the time of the crash, in this order.
inline constexpr uint32_t kCrashRegisterCount = 16;  // rax rbx rcx rdx rsi rdi rbp rsp r8..r15
inline constexpr uint32_t kCrashMessageMax = 128;

struct CrashRecord {
    CrashKind kind;
    uint32_t cpu;
    uint32_t vector;
    uint32_t reserved;
    uint64_t error_code;
    uint64_t rip;
    uint64_t cr2;
    uint64_t rflags;
    uint64_t registers[kCrashRegisterCount];
    char message[kCrashMessageMax];  // NUL-terminated (the VMM does not rely on it)
};
static_assert(offsetof(CrashRecord, kind) == 0);
static_assert(offsetof(CrashRecord, cpu) == 4);
static_assert(offsetof(CrashRecord, vector) == 8);
static_assert(offsetof(CrashRecord, error_code) == 16);
static_assert(offsetof(CrashRecord, rip) == 24);
static_assert(offsetof(CrashRecord, cr2) == 32);
static_assert(offsetof(CrashRecord, rflags) == 40);
static_assert(offsetof(CrashRecord, registers) == 48);
static_assert(offsetof(CrashRecord, message) == 48 + 8 * kCrashRegisterCount);
static_assert(sizeof(CrashRecord) == 176 + kCrashMessageMax);

// The guest's per-node page-allocation counters, written when it exits normally (not on a crash).
// Per node, as Linux's numastat counts them: `hit` pages allocated here for a thread whose ideal
// node this is; `miss` allocated here although the thread's ideal node was another; `foreign`
// meant for this node but allocated elsewhere; `local`/`other` allocated here for a thread running
// on a CPU of this node / of another node. `migrated_in`: pages moved here by migration.
inline constexpr uint32_t kMaxReportedNumaNodes = 16;

struct NumaNodeCounters {
    uint64_t hit;
    uint64_t miss;
    uint64_t foreign;
    uint64_t local;
    uint64_t other;
    uint64_t migrated_in;
    uint64_t managed_pages;  // pages of this node the page allocator manages
    uint64_t free_pages;     // of which free at exit
};
static_assert(offsetof(NumaNodeCounters, hit) == 0);
static_assert(offsetof(NumaNodeCounters, miss) == 8);
static_assert(offsetof(NumaNodeCounters, foreign) == 16);
static_assert(offsetof(NumaNodeCounters, local) == 24);
static_assert(offsetof(NumaNodeCounters, other) == 32);
static_assert(offsetof(NumaNodeCounters, migrated_in) == 40);
static_assert(offsetof(NumaNodeCounters, managed_pages) == 48);
static_assert(offsetof(NumaNodeCounters, free_pages) == 56);
static_assert(sizeof(NumaNodeCounters) == 64);

struct GuestReport {
    uint64_t magic;                        // kGuestReportMagic once the guest has started writing
    uint64_t phase_tsc[kBootPhaseCount];   // 0 = phase not reached
    uint32_t platform;                     // GuestPlatform the kernel chose
    uint32_t reserved;
    CrashRecord crash;
    uint32_t numa_node_count;              // entries used in numa_nodes; 0 = not written
    uint32_t reserved2;
    NumaNodeCounters numa_nodes[kMaxReportedNumaNodes];
};
enum class GuestPlatform : uint32_t { kUnknown = 0, kPvm = 1, kClassic = 2 };
static_assert(offsetof(GuestReport, magic) == 0);
static_assert(offsetof(GuestReport, phase_tsc) == 8);
static_assert(offsetof(GuestReport, platform) == 8 + 8 * kBootPhaseCount);
static_assert(offsetof(GuestReport, crash) == 16 + 8 * kBootPhaseCount);
static_assert(offsetof(GuestReport, numa_node_count) == 16 + 8 * kBootPhaseCount + sizeof(CrashRecord));
static_assert(offsetof(GuestReport, numa_nodes) == 24 + 8 * kBootPhaseCount + sizeof(CrashRecord));
static_assert(sizeof(GuestReport) == 24 + 8 * kBootPhaseCount + sizeof(CrashRecord) + 64 * kMaxReportedNumaNodes);
static_assert(sizeof(GuestReport) <= kPageSize);

}  // namespace hvkvm::abi
