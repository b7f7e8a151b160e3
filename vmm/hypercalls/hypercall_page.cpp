#include "hypercalls/hypercall_page.h"

#include <cstring>

#include "hvkvm/abi/hypercall.h"

extern "C" const uint8_t hvkvm_hypercall_page_code[], hvkvm_hypercall_page_code_end[];
extern "C" const uint8_t hvkvm_hypercall_page_hypercall_out[], hvkvm_hypercall_page_signal_event_out[],
    hvkvm_hypercall_page_kick_vp_out[];

namespace hvkvm::vmm {

std::span<const uint8_t> hypercall_page_code() {
    return {hvkvm_hypercall_page_code, static_cast<size_t>(hvkvm_hypercall_page_code_end - hvkvm_hypercall_page_code)};
}

void write_hypercall_page(std::span<std::byte> page) {
    const auto code = hypercall_page_code();
    std::memcpy(page.data(), code.data(), code.size());
    std::memset(page.data() + code.size(), 0xcc, page.size() - code.size());  // int3
}

std::optional<size_t> hypercall_page_out_offset(uint16_t port) {
    const uint8_t* instruction = nullptr;
    switch (port) {
    case abi::hv::kHypercallPort: instruction = hvkvm_hypercall_page_hypercall_out; break;
    case abi::hv::kSignalEventPort: instruction = hvkvm_hypercall_page_signal_event_out; break;
    case abi::hv::kKickVpPort: instruction = hvkvm_hypercall_page_kick_vp_out; break;
    default: return std::nullopt;
    }
    return static_cast<size_t>(instruction - hvkvm_hypercall_page_code);
}

}  // namespace hvkvm::vmm
