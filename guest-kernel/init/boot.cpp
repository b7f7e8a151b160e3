// Bring-up of every vCPU, from the entry stubs to the scheduler. On PVM hosts everything before
// convert_to_pvm() runs in KVM's instruction emulator (~1 us per instruction), so that part does
// only what the conversion requires: per-CPU pointer, GDT/TSS, the IDT register, and (boot CPU)
// the CPUID snapshot, which must precede conversion.
#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/descriptors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "drivers/ioapic.h"
#include "drivers/synic/synic.h"
#include "hv/hypervisor.h"
#include "kernel/boot_info.h"
#include "kernel/console.h"
#include "kernel/host_interface.h"
#include "kernel/memory_migration.h"
#include "init/kernel_main.h"
#include "kernel/panic.h"
#include "kernel/sched/scheduler.h"
#include "kernel/smp/smp.h"
#include "kernel/sync/spinlock.h"
#include "kernel/work/work_queue.h"
#include "arch/x86_64/time.h"
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

bool uses_pvm(const abi::BootInfo* boot_info) {
    return boot_info->magic == abi::kBootInfoMagic && (boot_info->flags & abi::kBootFlagUsePvm);
}

// Everything a CPU needs before it can take interrupts, in the order the platform requires. Its
// PerCpu, GDT and TSS have been prepared already (prepare_per_cpu).
void bring_up_cpu_descriptors(const abi::BootInfo* boot_info, uint32_t index) {
    install_per_cpu(index);
    PerCpu& cpu = per_cpu(index);
    x86::load_gdt_and_tss(cpu.descriptors);
    x86::load_idt();
    if (uses_pvm(boot_info)) platform::convert_to_pvm(cpu);
}

// The legacy PIC is never used (the LAPIC and IOAPIC are); mask it so it cannot inject anything.
void mask_legacy_pic() {
    x86::outb(0x21, 0xff);
    x86::outb(0xa1, 0xff);
}

void main_thread(void* boot_info) { kernel_main(*static_cast<const abi::BootInfo*>(boot_info)); }

}  // namespace

extern "C" [[noreturn]] void kernel_entry(const abi::BootInfo* boot_info, uint64_t vcpu_index) {
    boot_milestone(abi::BootPhase::kGuestEntry);
    x86::read_cpu_features();
    prepare_per_cpu(static_cast<uint32_t>(vcpu_index));
    bring_up_cpu_descriptors(boot_info, static_cast<uint32_t>(vcpu_index));
    // From here on, native speed on PVM hosts.
    x86::fill_idt();
    report_platform(uses_pvm(boot_info) ? abi::GuestPlatform::kPvm : abi::GuestPlatform::kClassic);
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
    if (hv::init()) {
        console_use_hypervisor_messages();
        // Single-threaded and no lock held: the one moment the spinlock algorithm may change.
        if (hv::recommended_spin_count() != abi::hv::kSpinCountNeverNotify) set_spinlock_kind(SpinLockKind::kParavirtualTicket);
    }

    mask_legacy_pic();
    apic::init_boot_cpu();
    ioapic::init();
    boot_phase_reached(abi::BootPhase::kInterruptsReady);
    sched::init_boot_cpu();
    smp::mark_this_cpu_online();
    platform::enable_interrupts();
    boot_phase_reached(abi::BootPhase::kSchedulerReady);

    smp::start_secondary_cpus(*boot_info);
    work::init();
    migration::start();
    synic::init();  // every CPU is online: each gets its message and event-flag pages
    boot_phase_reached(abi::BootPhase::kSecondaryCpusUp);

    sched::ThreadOptions options;
    options.name = "main";
    options.ideal_cpu = 0;
    options.stack_bytes = 32 * 1024;
    if (!sched::create_thread(main_thread, const_cast<abi::BootInfo*>(boot_info), options))
        panic("cannot create the main thread");
    sched::idle_loop();  // this boot context is CPU 0's idle thread from now on
}

extern "C" [[noreturn]] void secondary_cpu_entry(const abi::BootInfo* boot_info, uint64_t vcpu_index) {
    bring_up_cpu_descriptors(boot_info, static_cast<uint32_t>(vcpu_index));
    apic::init_this_cpu();
    sched::init_this_cpu();
    smp::mark_this_cpu_online();
    platform::enable_interrupts();
    sched::idle_loop();
}

}  // namespace hvkvm::guest
