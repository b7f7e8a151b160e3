#include "arch/x86_64/per_cpu.h"

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest {
namespace {

PerCpu all_cpus[abi::kMaxVcpus];
PvmControlPage all_pvm_control_pages[abi::kMaxVcpus];

}  // namespace

PerCpu& per_cpu(uint32_t index) { return all_cpus[index]; }
PvmControlPage& pvm_control_page(uint32_t index) { return all_pvm_control_pages[index]; }

void prepare_per_cpu(uint32_t index) {
    PerCpu& cpu = all_cpus[index];
    cpu.self = &cpu;
    cpu.index = index;
    x86::build_gdt_and_tss(cpu.descriptors);
}

void install_per_cpu(uint32_t index) {
    x86::wrmsr(x86::kMsrGsBase, reinterpret_cast<uint64_t>(&all_cpus[index]));
}

}  // namespace hvkvm::guest
