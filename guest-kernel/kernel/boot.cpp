// Boot of the first vCPU, from the entry stub to kernel_main. On PVM hosts everything before
// convert_to_pvm() runs in KVM's instruction emulator (~1 us per instruction), so that part does
// only what the conversion requires: per-CPU pointer, GDT/TSS, and the IDT register.
#include "arch/x86_64/descriptors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/boot_info.h"
#include "kernel/console.h"
#include "kernel/host_interface.h"
#include "kernel/kernel_main.h"
#include "kernel/panic.h"
#include "kernel/time.h"
#include "mm/mm.h"

extern "C" {
using Constructor = void (*)();
extern Constructor __init_array_start[], __init_array_end[];
}

namespace hvkvm::guest {
namespace {

void run_global_constructors() {
    for (Constructor* constructor = __init_array_start; constructor != __init_array_end; ++constructor) (*constructor)();
}

}  // namespace

extern "C" [[noreturn]] void kernel_entry(const abi::BootInfo* boot_info, uint64_t vcpu_index) {
    boot_milestone(abi::BootPhase::kGuestEntry);
    install_per_cpu(static_cast<uint32_t>(vcpu_index));
    PerCpu& cpu = per_cpu(static_cast<uint32_t>(vcpu_index));
    x86::load_gdt_and_tss(cpu.descriptors);
    x86::load_idt();
    const bool use_pvm = boot_info->magic == abi::kBootInfoMagic && (boot_info->flags & abi::kBootFlagUsePvm);
    if (use_pvm) platform::convert_to_pvm(cpu);
    // From here on, native speed on PVM hosts.
    x86::fill_idt();
    report_platform(use_pvm ? abi::GuestPlatform::kPvm : abi::GuestPlatform::kClassic);
    boot_phase_reached(abi::BootPhase::kCpuConverted);

    run_global_constructors();
    console_init();
    boot_phase_reached(abi::BootPhase::kConsoleReady);
    const auto* cmdline = reinterpret_cast<const char*>(abi::kCmdlineGpa);
    if (const char* problem = validate_boot_info(*boot_info, cmdline)) panic("invalid boot info from the VMM: %s", problem);
    if (boot_info->tsc_khz == 0) panic("the VMM did not report the TSC frequency");
    time::init(boot_info->tsc_khz);
    mm::init(*boot_info);
    boot_phase_reached(abi::BootPhase::kMemoryReady);
    kernel_main(*boot_info);
}

}  // namespace hvkvm::guest
