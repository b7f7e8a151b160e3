#include "kernel/smp/smp.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/trap_frame.h"
#include "kernel/console.h"
#include "kernel/panic.h"
#include "kernel/sync/spinlock.h"
#include "kernel/time.h"
#include "lib/bits.h"
#include "lib/intrusive_list.h"
#include "mm/paging.h"

extern "C" char secondary_cpu_start[];

namespace hvkvm::guest::smp {
namespace {

constexpr uint64_t kBringUpTimeoutNs = 5'000'000'000ull;
constexpr uint64_t kSecondaryStackBytes = 16 * 1024;

// A call waiting for (or being served by) its target CPU; lives on the caller's stack.
struct CallRequest {
    CpuFunction function;
    void* argument;
    ListNode link;
    bool done;
};

struct CallMailbox {
    SpinLock lock;
    IntrusiveList<CallRequest, &CallRequest::link> requests;
    uint64_t sent = 0;
    uint64_t served = 0;
};

// The machine's CPUs: one instance per VM.
struct Cpus {
    uint32_t configured = 1;
    uint64_t online = 0;
    abi::VcpuStartRequest start_requests[abi::kMaxVcpus];
    CallMailbox mailboxes[abi::kMaxVcpus];
} cpus;

void serve_calls() {
    CallMailbox& mailbox = cpus.mailboxes[this_cpu().index];
    for (;;) {
        CallRequest* request;
        {
            SpinLockGuard guard(mailbox.lock);
            request = mailbox.requests.pop_front();
        }
        if (!request) return;
        request->function(request->argument);
        ++mailbox.served;
        __atomic_store_n(&request->done, true, __ATOMIC_RELEASE);  // the caller may now reuse it
    }
}

void handle_call_function_vector(x86::TrapFrame&) {
    apic::end_of_interrupt();
    serve_calls();
}

void post(uint32_t cpu, CallRequest& request) {
    {
        SpinLockGuard guard(cpus.mailboxes[cpu].lock);
        cpus.mailboxes[cpu].requests.push_back(request);
    }
    ++cpus.mailboxes[this_cpu().index].sent;
    apic::send_ipi(cpu, x86::kCallFunctionVector);
}

void wait_for(const CallRequest& request) {
    while (!__atomic_load_n(&request.done, __ATOMIC_ACQUIRE)) {
        serve_calls();  // two CPUs calling each other with interrupts off must not deadlock
        x86::pause();
    }
}

void start_one(uint32_t cpu, const abi::BootInfo& boot_info) {
    prepare_per_cpu(cpu);
    mm::KernelStack stack;
    if (!mm::allocate_stack(kSecondaryStackBytes, stack)) panic("no memory for vCPU %u's stack", cpu);
    abi::VcpuStartRequest& request = cpus.start_requests[cpu];
    request.vcpu_index = cpu;
    request.status = abi::VcpuStartStatus::kPending;
    request.rip = reinterpret_cast<uint64_t>(secondary_cpu_start);
    request.rsp = stack.top;
    request.cr3 = mm::kernel_page_table_root();
    request.argument = reinterpret_cast<uint64_t>(&boot_info);
    x86::outl(abi::kStartVcpuPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(&request)));
    if (request.status != abi::VcpuStartStatus::kStarted)
        panic("the VMM refused to start vCPU %u (status %u)", cpu, static_cast<uint32_t>(request.status));
}

}  // namespace

void start_secondary_cpus(const abi::BootInfo& boot_info) {
    x86::set_interrupt_handler(x86::kCallFunctionVector, handle_call_function_vector);
    cpus.configured = boot_info.vcpu_count;
    for (uint32_t cpu = 1; cpu < cpus.configured; ++cpu) start_one(cpu, boot_info);
    const uint64_t everyone = cpus.configured == 64 ? ~0ull : (1ull << cpus.configured) - 1;
    const uint64_t deadline = time::now_ns() + kBringUpTimeoutNs;
    while (__atomic_load_n(&cpus.online, __ATOMIC_ACQUIRE) != everyone) {
        if (time::now_ns() > deadline)
            panic("vCPUs did not come online within 5 s (online mask %#lx of %#lx)", cpus.online, everyone);
        x86::pause();
    }
}

void mark_this_cpu_online() { __atomic_fetch_or(&cpus.online, 1ull << this_cpu().index, __ATOMIC_RELEASE); }

uint32_t configured_cpu_count() { return cpus.configured; }
uint64_t online_mask() { return __atomic_load_n(&cpus.online, __ATOMIC_ACQUIRE); }
uint32_t online_count() { return popcount64(online_mask()); }

void run_on_cpu(uint32_t cpu, CpuFunction function, void* argument) {
    platform::InterruptsDisabled no_interrupts;  // stay on this CPU while deciding
    if (cpu == this_cpu().index) {
        function(argument);
        return;
    }
    CallRequest request{function, argument, {}, false};
    post(cpu, request);
    wait_for(request);
}

void run_on_other_cpus(CpuFunction function, void* argument) {
    platform::InterruptsDisabled no_interrupts;
    CallRequest requests[abi::kMaxVcpus];
    const uint32_t self = this_cpu().index;
    const uint64_t targets = online_mask() & ~(1ull << self);
    for (uint64_t rest = targets; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        requests[cpu] = CallRequest{function, argument, {}, false};
        post(cpu, requests[cpu]);
    }
    for (uint64_t rest = targets; rest; rest &= rest - 1) wait_for(requests[__builtin_ctzll(rest)]);
}

IpiStats ipi_stats(uint32_t cpu) { return {cpus.mailboxes[cpu].sent, cpus.mailboxes[cpu].served}; }

}  // namespace hvkvm::guest::smp
