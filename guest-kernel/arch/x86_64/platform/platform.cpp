#include "arch/x86_64/platform/platform.h"

#include "arch/x86_64/cpu.h"

extern "C" void pvm_safe_halt(volatile uint8_t* interrupt_flag);
extern "C" void classic_safe_halt();
extern "C" char pvm_halt_instruction[];

namespace hvkvm::guest::platform {
namespace {

// Writing a control page's GPA here leaves instruction emulation; 0 would go back.
constexpr uint32_t kMsrPvmControlPage = 0x4b564d10;

}  // namespace

void convert_to_pvm(PerCpu& cpu) {
    PvmControlPage& page = pvm_control_page(cpu.index);
    page.flags = 0;  // VIF = 0: interrupts stay off until the kernel enables them
    x86::wrmsr(kMsrPvmControlPage, reinterpret_cast<uint64_t>(&page));  // identity-mapped: GVA = GPA
    cpu.pvm_control = &page;
}

Kind kind() { return this_cpu().pvm_control ? Kind::kPvm : Kind::kClassic; }

const char* name(Kind kind) { return kind == Kind::kPvm ? "PVM" : "classic"; }

void safe_halt() {
    if (PvmControlPage* page = this_cpu().pvm_control) pvm_safe_halt(&detail::pvm_vif(page));
    else classic_safe_halt();
}

void step_over_interrupted_halt(uint64_t& rip) {
    if (rip == reinterpret_cast<uint64_t>(pvm_halt_instruction)) rip += 1;  // hlt is one byte
}

}  // namespace hvkvm::guest::platform
