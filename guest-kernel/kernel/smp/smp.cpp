#include "kernel/smp/smp.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "kernel/interrupts.h"
#include "kernel/panic.h"
#include "mm/node_topology.h"
#include "mm/paging.h"

extern "C" char secondary_cpu_start[];

namespace hvkvm::guest::smp {
namespace {

constexpr uint64_t kBringUpTimeoutNs = 5'000'000'000ull;
constexpr uint64_t kSecondaryStackBytes = 16 * 1024;

// The requests handed to the VMM, one per vCPU (they must stay valid until the vCPU runs).
abi::VcpuStartRequest start_requests[abi::kMaxVcpus];

void handle_call_function_vector(x86::TrapFrame&) {
    apic::end_of_interrupt();
    serve_cross_calls();
}

void start_one(uint32_t cpu, const abi::BootInfo& boot_info) {
    prepare_per_cpu(cpu);
    mm::KernelStack stack;
    if (!mm::allocate_stack(kSecondaryStackBytes, stack, mm::node_of_cpu(cpu))) panic("no memory for vCPU %u's stack", cpu);
    abi::VcpuStartRequest& request = start_requests[cpu];
    request.vcpu_index = cpu;
    request.rip = reinterpret_cast<uint64_t>(secondary_cpu_start);
    request.rsp = stack.top;
    request.cr3 = mm::kernel_page_table_root();
    request.argument = reinterpret_cast<uint64_t>(&boot_info);
    const abi::VcpuStartStatus status = request_vcpu_start(request);
    if (status != abi::VcpuStartStatus::kStarted)
        panic("the VMM refused to start vCPU %u (status %u)", cpu, static_cast<uint32_t>(status));
}

}  // namespace

abi::VcpuStartStatus request_vcpu_start(abi::VcpuStartRequest& request) {
    __atomic_store_n(&request.status, abi::VcpuStartStatus::kPending, __ATOMIC_RELAXED);
    x86::outl(abi::kStartVcpuPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(&request)));
    return __atomic_load_n(&request.status, __ATOMIC_RELAXED);
}

void start_secondary_cpus(const abi::BootInfo& boot_info) {
    interrupts::set_handler(x86::kCallFunctionVector, handle_call_function_vector);
    set_configured_cpu_count(boot_info.vcpu_count);
    for (uint32_t cpu = 1; cpu < boot_info.vcpu_count; ++cpu) start_one(cpu, boot_info);
    const uint64_t everyone = boot_info.vcpu_count == 64 ? ~0ull : (1ull << boot_info.vcpu_count) - 1;
    const uint64_t deadline = time::now_ns() + kBringUpTimeoutNs;
    while (online_mask() != everyone) {
        if (time::now_ns() > deadline)
            panic("vCPUs did not come online within 5 s (online mask %#lx of %#lx)", online_mask(), everyone);
        x86::pause();
    }
}

}  // namespace hvkvm::guest::smp
