#include "hypercalls/page_exit.h"

#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypercall_page.h"
#include "hypercalls/hypervisor.h"

namespace hvkvm::vmm {

bool is_hypercall_page_port(uint16_t port) {
    return port == abi::hv::kHypercallPort || port == abi::hv::kSignalEventPort || port == abi::hv::kKickVpPort;
}

bool is_hypercall_page_out(const PioExit& exit, const GuestCode& code, uint16_t dx, const Hypervisor& hypervisor) {
    if (!is_hypercall_page_port(exit.port) || !exit.is_single(PioDirection::kOut, 4) || code.length == 0) return false;
    const auto page_out = hypervisor.page_out_gpa(exit.port);
    if (!page_out) return false;
    const auto instruction = decode_pio_instruction(code.view());
    if (instruction && explains(*instruction, exit, dx)) return !instruction->string && code.gpa == *page_out;
    return code.gpa == *page_out + kHypercallPageOutLength;
}

}  // namespace hvkvm::vmm
