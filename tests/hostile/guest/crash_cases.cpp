// Guest crashes the VMM must report, never suffer: a triple fault, software interrupts (which PVM
// hosts cannot deliver), executing where there is no RAM, a fault with no usable stack, and every
// vCPU crashing at the same moment.
#include "cases.h"
#include "guest.h"

namespace hostile {
namespace {

struct __attribute__((packed)) DescriptorPointer {
    uint16_t limit;
    uint64_t base;
};

// No IDT at all: the #UD cannot be delivered, nor the #DF after it.
[[noreturn]] void triple_fault_now() {
    const DescriptorPointer empty{0, 0};
    __asm__ volatile("lidt %0; ud2" : : "m"(empty) : "memory");
    halt_forever();
}

void triple_fault() { triple_fault_now(); }

// int n through the guest's IDT. On PVM hosts KVM cannot deliver these (KVM_EXIT_INTERNAL_ERROR,
// a guest crash); elsewhere the handler returns and the case passes.
void software_interrupts() {
    __asm__ volatile("int $0x80" ::: "memory");
    __asm__ volatile("int $0x20" ::: "memory");
    __asm__ volatile("int $0xff" ::: "memory");
    __asm__ volatile("int3" ::: "memory");
    say("software interrupts returned");
}

// Jumping into the MMIO hole, above RAM, and off the end of RAM.
void execute_non_ram() {
    const char* where = command_line_value("at", "hole");
    uint64_t target = 0xd0000000ull;
    if (strings_equal(where, "beyond-ram")) {
        target = map_physical_window(ram_end_below_hole() + abi::kLargePageSize);
    } else if (strings_equal(where, "ram-end")) {
        // Two nops in the last bytes of RAM, then nothing mapped.
        target = ram_end_below_hole() - 2;
        *reinterpret_cast<volatile uint16_t*>(target) = 0x9090;
    }
    const uint32_t fault = probe_call(target);
    say("execution at %x (%s) faulted with vector %x", target, where, uint64_t{fault});
}

// A fault whose frame cannot be pushed: the stack pointer is non-canonical.
void fault_without_stack() {
    __asm__ volatile("movabs $0x8000000000000000, %%rax; mov %%rax, %%rsp; ud2" ::: "rax", "memory");
}

// cmpxchg16b on MMIO: KVM's emulator may give up (an internal error: a guest crash).
void cmpxchg16b_mmio() {
    alignas(16) static uint64_t unused[2];
    (void)unused;
    uint64_t rax = 0, rdx = 0;
    __asm__ volatile("lock cmpxchg16b (%2)" : "+a"(rax), "+d"(rdx) : "r"(0xd0004000ull), "b"(1ull), "c"(2ull) : "memory", "cc");
    say("cmpxchg16b on MMIO read %x:%x", rdx, rax);
}

// Every vCPU crashes at once, by triple fault or through the report page and exit port.
Barrier* crash_barrier;
void triple_fault_together(uint32_t) {
    crash_barrier->arrive_and_wait();
    triple_fault_now();
}

void report_crash_together(uint32_t cpu) {
    crash_barrier->arrive_and_wait();
    auto& report = *reinterpret_cast<abi::GuestReport*>(abi::kGuestReportGpa);
    report.magic = abi::kGuestReportMagic;
    report.crash.kind = abi::CrashKind::kPanic;
    report.crash.cpu = cpu;
    const char message[] = "every vCPU panics at once";
    memcpy(report.crash.message, message, sizeof message);
    exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kCrash));
}

void all_vcpus_crash() {
    static Barrier barrier(vcpu_count());
    crash_barrier = &barrier;
    const CpuWork work = command_line_equals("how", "report") ? report_crash_together : triple_fault_together;
    start_all_aps(work);
    work(0);
}

const Case kCases[] = {
    {"triple-fault", triple_fault},         {"software-interrupts", software_interrupts},
    {"execute-non-ram", execute_non_ram},   {"fault-without-stack", fault_without_stack},
    {"cmpxchg16b-mmio", cmpxchg16b_mmio},   {"all-vcpus-crash", all_vcpus_crash},
};

}  // namespace

const CaseGroup kCrashCases = group(kCases);

}  // namespace hostile
