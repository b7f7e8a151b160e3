#include "kernel/sync/cross_call.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hvkvm/abi/boot.h"
#include "kernel/sync/spinlock.h"
#include "lib/bits.h"
#include "lib/intrusive_list.h"

namespace hvkvm::guest::smp {
namespace {

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
    CallMailbox mailboxes[abi::kMaxVcpus];
} cpus;

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
        serve_cross_calls();  // two CPUs calling each other with interrupts off must not deadlock
        x86::pause();
    }
}

}  // namespace

void mark_this_cpu_online() { __atomic_fetch_or(&cpus.online, 1ull << this_cpu().index, __ATOMIC_RELEASE); }
uint64_t online_mask() { return __atomic_load_n(&cpus.online, __ATOMIC_ACQUIRE); }
uint32_t online_count() { return popcount64(online_mask()); }
void set_configured_cpu_count(uint32_t count) { cpus.configured = count; }
uint32_t configured_cpu_count() { return cpus.configured; }

void serve_cross_calls() {
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
