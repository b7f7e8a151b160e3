// handle_trap: the C++ side of every interrupt and exception. Registered handlers get the first
// chance; an exception nobody handles is fatal: the register dump goes to the console, the crash
// record to the VMM, and the run ends with the crash status.
#include "kernel/interrupts.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/fault_probe.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hvkvm/abi/x86_exceptions.h"
#include "kernel/console.h"
#include "kernel/host_interface.h"
#include "kernel/sched/scheduler.h"
#include "kernel/sync/spinlock.h"
#include "lib/format.h"
#include "mm/paging.h"

namespace hvkvm::guest::interrupts {

using x86::TrapFrame;

namespace {

constexpr uint32_t kDeviceVectors = x86::kLastDeviceVector - x86::kFirstDeviceVector + 1;

struct DeviceVector {
    DeviceHandler handler;  // null: free
    void* context;
    const char* owner;
    uint64_t delivered[abi::kMaxVcpus];  // each CPU writes only its own counter
};

// Shared by all CPUs. Fixed handlers are set during boot and by tests; device vectors are claimed
// and released under `claim_lock` and read by the dispatcher without it: the handler pointer is
// published last and read first.
struct TrapHandlers {
    ExceptionHandler exceptions[x86::kFirstExternalVector];
    FixedHandler fixed[256];
    SpinLock claim_lock;
    DeviceVector devices[kDeviceVectors];
    uint64_t stray;
} handlers;

const char* exception_description(uint64_t vector) {
    const abi::ExceptionName* name = abi::exception_name(vector);
    return name ? name->description : "external interrupt";
}

const char* exception_mnemonic(uint64_t vector) {
    const abi::ExceptionName* name = abi::exception_name(vector);
    return name ? name->mnemonic : "";
}

DeviceVector* device_vector(uint64_t vector) {
    if (vector < x86::kFirstDeviceVector || vector > x86::kLastDeviceVector) return nullptr;
    return &handlers.devices[vector - x86::kFirstDeviceVector];
}

// A device interrupt: the driver's handler (which acknowledges its device), then the EOI. One on
// a vector nobody claims is a stray: acknowledged, counted, dropped.
bool dispatch_device_interrupt(uint64_t vector) {
    DeviceVector* slot = device_vector(vector);
    if (!slot) return false;
    if (const DeviceHandler handler = __atomic_load_n(&slot->handler, __ATOMIC_ACQUIRE)) {
        handler(slot->context);
        __atomic_store_n(&slot->delivered[this_cpu().index], slot->delivered[this_cpu().index] + 1, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&handlers.stray, 1, __ATOMIC_RELAXED);
    }
    apic::end_of_interrupt();
    return true;
}

// A fault in a stack's guard page (or a double fault because the fault handler itself hit it).
bool looks_like_stack_overflow(const TrapFrame& f, uint64_t cr2) {
    if (f.vector == 14) return mm::is_stack_guard_page(cr2);
    if (f.vector == 8) return mm::is_stack_guard_page(f.rsp) || mm::is_stack_guard_page(f.rsp - 8);
    return false;
}

void print_register_dump(const TrapFrame& f, uint64_t cr2, uint32_t cpu) {
    kprint_unlocked("\n*** unhandled exception on vCPU %u: %s %s (vector %lu), error code %#lx\n", cpu,
                    exception_mnemonic(f.vector), exception_description(f.vector), f.vector, f.error_code);
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
    const uint64_t cr2 = x86::read_cr2();
    // A fault while already crashing (e.g. the console faulted): skip straight to the exit.
    if (!cpu.crashing) {
        cpu.crashing = true;
        print_register_dump(frame, cr2, cpu.index);
    }
    if (claim_crash_record()) record_crash(frame, cr2, cpu.index);
    exit_to_vmm(abi::GuestExitCode::kCrash);
}

}  // namespace

void set_exception_handler(uint8_t vector, ExceptionHandler handler) {
    if (vector < x86::kFirstExternalVector) handlers.exceptions[vector] = handler;
}

void set_handler(uint8_t vector, FixedHandler handler) { handlers.fixed[vector] = handler; }

uint8_t claim_vector(DeviceHandler handler, void* context, const char* owner) {
    IrqSpinLockGuard guard(handlers.claim_lock);
    for (uint32_t i = 0; i < kDeviceVectors; ++i) {
        DeviceVector& slot = handlers.devices[i];
        if (slot.handler) continue;
        slot.context = context;
        slot.owner = owner;
        for (uint64_t& count : slot.delivered) __atomic_store_n(&count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slot.handler, handler, __ATOMIC_RELEASE);
        return static_cast<uint8_t>(x86::kFirstDeviceVector + i);
    }
    return 0;
}

void release_vector(uint8_t vector) {
    IrqSpinLockGuard guard(handlers.claim_lock);
    if (DeviceVector* slot = device_vector(vector)) __atomic_store_n(&slot->handler, nullptr, __ATOMIC_RELEASE);
}

uint32_t free_device_vectors() {
    IrqSpinLockGuard guard(handlers.claim_lock);
    uint32_t free = 0;
    for (const DeviceVector& slot : handlers.devices) free += slot.handler == nullptr;
    return free;
}

uint64_t delivered(uint8_t vector, uint32_t cpu) {
    const DeviceVector* slot = device_vector(vector);
    return slot && cpu < abi::kMaxVcpus ? __atomic_load_n(&slot->delivered[cpu], __ATOMIC_RELAXED) : 0;
}

uint64_t stray_device_interrupts() { return __atomic_load_n(&handlers.stray, __ATOMIC_RELAXED); }

extern "C" void handle_trap(TrapFrame* frame) {
    platform::step_over_interrupted_halt(frame->rip);
    if (frame->vector < x86::kFirstExternalVector) {
        if (frame->vector == 13 || frame->vector == 14) {
            if (uint64_t resume = x86::find_exception_fixup(frame->rip)) {
                frame->rip = resume;
                return;
            }
        }
        ExceptionHandler handler = handlers.exceptions[frame->vector];
        if (handler && handler(*frame)) return;
        crash(*frame);
    }
    if (FixedHandler handler = handlers.fixed[frame->vector]) {
        handler(*frame);
        sched::preempt_if_needed();  // a time slice ended or a thread was woken for this CPU
        return;
    }
    if (dispatch_device_interrupt(frame->vector)) {
        sched::preempt_if_needed();  // the driver may have woken a thread
        return;
    }
    if (frame->vector == x86::kSpuriousVector) return;  // no EOI for spurious interrupts
    kprint_unlocked("\n*** unexpected interrupt vector %lu on vCPU %u\n", frame->vector, this_cpu().index);
    crash(*frame);
}

}  // namespace hvkvm::guest::interrupts
