#include "arch/x86_64/per_cpu.h"

#include <stddef.h>

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest {
namespace {

// One CPU's control page and, right after it, its PerCpu (kPvmControlPageGsOffset).
struct alignas(4096) CpuArea {
    PvmControlPage pvm_control;
    PerCpu cpu;
};
static_assert(offsetof(CpuArea, cpu) - offsetof(CpuArea, pvm_control) == -kPvmControlPageGsOffset);

CpuArea all_cpus[abi::kMaxVcpus];

}  // namespace

PerCpu& per_cpu(uint32_t index) { return all_cpus[index].cpu; }
PvmControlPage& pvm_control_page(uint32_t index) { return all_cpus[index].pvm_control; }

void prepare_per_cpu(uint32_t index) {
    PerCpu& cpu = all_cpus[index].cpu;
    cpu.self = &cpu;
    cpu.index = index;
    x86::build_gdt_and_tss(cpu.descriptors);
}

void install_per_cpu(uint32_t index) {
    x86::wrmsr(x86::kMsrGsBase, reinterpret_cast<uint64_t>(&all_cpus[index].cpu));
}

}  // namespace hvkvm::guest
