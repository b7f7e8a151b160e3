// Per-CPU data, reached through the GS base (this_cpu()). Every field is written only by its own
// CPU, except where a comment says otherwise.
#pragma once

#include <stdint.h>

#include "arch/x86_64/descriptors.h"
#include "hvkvm/abi/boot.h"

namespace hvkvm::guest {

namespace sched {
struct Thread;
}

// PVM per-vCPU control page ("PVCS"), registered with the host by the conversion wrmsr. Byte 0
// bit 0 is the virtual interrupt flag; bit 8 of the first qword is set by the host when it holds
// back an interrupt because VIF was 0.
struct alignas(4096) PvmControlPage {
    volatile uint64_t flags;
    uint8_t reserved[4096 - 8];
};
static_assert(sizeof(PvmControlPage) == 4096);

struct PerCpu {
    PerCpu* self;                    // %gs:0, so this_cpu() is one load
    uint32_t index;                  // vCPU index (= initial APIC ID)
    uint32_t node;                   // this CPU's NUMA node (set by mm for every CPU at boot)
    // The node the running thread's memory comes from: its ideal node, which may differ from
    // `node` when it runs away from its ideal processor. Set by the scheduler at every switch.
    uint32_t memory_node;
    bool crashing;                   // set while reporting a fatal exception on this CPU
    bool need_resched;               // run the scheduler when the current interrupt returns
    PvmControlPage* pvm_control;     // null on the classic platform
    sched::Thread* current_thread;
    x86::CpuDescriptors descriptors;
};

// Each CPU's control page lies immediately before its PerCpu (GS points at the PerCpu), so that
// the virtual interrupt flag is one %gs-relative access away (platform.h says why that matters).
inline constexpr int32_t kPvmControlPageGsOffset = -static_cast<int32_t>(sizeof(PvmControlPage));

inline PerCpu& this_cpu() {
    PerCpu* cpu;
    __asm__("movq %%gs:0, %0" : "=r"(cpu));
    return *cpu;
}

// The per-CPU structures of every possible vCPU, indexed by vCPU index.
PerCpu& per_cpu(uint32_t index);
PvmControlPage& pvm_control_page(uint32_t index);

// Fills in a CPU's PerCpu (boot CPU, for itself and before starting each other CPU).
void prepare_per_cpu(uint32_t index);
// Points this CPU's GS base at its (prepared) PerCpu.
void install_per_cpu(uint32_t index);

}  // namespace hvkvm::guest
