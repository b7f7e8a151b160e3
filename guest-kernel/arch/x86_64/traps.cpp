// handle_trap: the C++ side of every interrupt and exception. Registered handlers get the first
// chance; an exception nobody handles is fatal: the register dump goes to the console, the crash
// record to the VMM, and the run ends with the crash status.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/fault_probe.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/trap_frame.h"
#include "kernel/console.h"
#include "kernel/sched/scheduler.h"
#include "lib/format.h"
#include "mm/paging.h"
#include "kernel/host_interface.h"

namespace hvkvm::guest::x86 {
namespace {

// Shared by all CPUs; written only during boot and by tests.
struct TrapHandlers {
    ExceptionHandler exceptions[kFirstExternalVector];
    InterruptHandler interrupts[256];
} handlers;

constexpr const char* kExceptionNames[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
    "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor segment overrun",
    "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
    "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check",
    "#XM SIMD error", "#VE virtualization", "#CP control protection"};

// A fault in a stack's guard page (or a double fault because the fault handler itself hit it).
bool looks_like_stack_overflow(const TrapFrame& f, uint64_t cr2) {
    if (f.vector == 14) return mm::is_stack_guard_page(cr2);
    if (f.vector == 8) return mm::is_stack_guard_page(f.rsp) || mm::is_stack_guard_page(f.rsp - 8);
    return false;
}

void print_register_dump(const TrapFrame& f, uint64_t cr2, uint32_t cpu) {
    kprint_unlocked("\n*** unhandled exception on vCPU %u: %s (vector %lu), error code %#lx\n", cpu,
                    exception_name(f.vector), f.vector, f.error_code);
    if (looks_like_stack_overflow(f, cr2)) kprint_unlocked("    kernel stack overflow: the guard page below a thread's stack was hit\n");
    kprint_unlocked("    RIP %016lx  CS %04lx  RFLAGS %016lx  CR2 %016lx\n", f.rip, f.cs, f.rflags, cr2);
    kprint_unlocked("    RAX %016lx  RBX %016lx  RCX %016lx  RDX %016lx\n", f.rax, f.rbx, f.rcx, f.rdx);
    kprint_unlocked("    RSI %016lx  RDI %016lx  RBP %016lx  RSP %016lx\n", f.rsi, f.rdi, f.rbp, f.rsp);
    kprint_unlocked("    R8  %016lx  R9  %016lx  R10 %016lx  R11 %016lx\n", f.r8, f.r9, f.r10, f.r11);
    kprint_unlocked("    R12 %016lx  R13 %016lx  R14 %016lx  R15 %016lx\n", f.r12, f.r13, f.r14, f.r15);
}

void record_crash(const TrapFrame& frame, uint64_t cr2, uint32_t cpu) {
    abi::CrashRecord& crash = guest_report().crash;
    crash.cpu = cpu;
    crash.vector = static_cast<uint32_t>(frame.vector);
    crash.error_code = frame.error_code;
    crash.rip = frame.rip;
    crash.cr2 = cr2;
    crash.rflags = frame.rflags;
    const uint64_t registers[abi::kCrashRegisterCount] = {
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp, frame.rsp,
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15};
    for (uint32_t i = 0; i < abi::kCrashRegisterCount; ++i) crash.registers[i] = registers[i];
    if (looks_like_stack_overflow(frame, cr2))
        format(crash.message, sizeof crash.message, "kernel stack overflow in thread %s",
               this_cpu().current_thread ? this_cpu().current_thread->name : "?");
    crash.kind = abi::CrashKind::kException;
    guest_report().magic = abi::kGuestReportMagic;
}

[[noreturn]] void crash(const TrapFrame& frame) {
    PerCpu& cpu = this_cpu();
    const uint64_t cr2 = read_cr2();
    // A fault while already crashing (e.g. the console faulted): skip straight to the exit.
    if (!cpu.crashing) {
        cpu.crashing = true;
        print_register_dump(frame, cr2, cpu.index);
    }
    if (claim_crash_record()) record_crash(frame, cr2, cpu.index);
    exit_to_vmm(abi::GuestExitCode::kCrash);
}

}  // namespace

const char* exception_name(uint64_t vector) {
    if (vector < kFirstExternalVector) return kExceptionNames[vector] ? kExceptionNames[vector] : "reserved";
    return "external interrupt";
}

void set_exception_handler(uint8_t vector, ExceptionHandler handler) {
    if (vector < kFirstExternalVector) handlers.exceptions[vector] = handler;
}

void set_interrupt_handler(uint8_t vector, InterruptHandler handler) { handlers.interrupts[vector] = handler; }

extern "C" void handle_trap(TrapFrame* frame) {
    platform::step_over_interrupted_halt(frame->rip);
    if (frame->vector < kFirstExternalVector) {
        if (frame->vector == 13 || frame->vector == 14) {
            if (uint64_t resume = find_exception_fixup(frame->rip)) {
                frame->rip = resume;
                return;
            }
        }
        ExceptionHandler handler = handlers.exceptions[frame->vector];
        if (handler && handler(*frame)) return;
        crash(*frame);
    }
    if (InterruptHandler handler = handlers.interrupts[frame->vector]) {
        handler(*frame);
        sched::preempt_if_needed();  // a time slice ended or a thread was woken for this CPU
        return;
    }
    if (frame->vector == kSpuriousVector) return;  // no EOI for spurious interrupts
    kprint_unlocked("\n*** unexpected interrupt vector %lu on vCPU %u\n", frame->vector, this_cpu().index);
    crash(*frame);
}

}  // namespace hvkvm::guest::x86
