#include "hypercalls/hypercall_page.h"

#include "hvkvm/abi/boot.h"

extern "C" const uint8_t hvkvm_hypercall_page_code[], hvkvm_hypercall_page_code_end[];

namespace hvkvm::vmm {

std::span<const uint8_t> hypercall_page_code() {
    return {hvkvm_hypercall_page_code, static_cast<size_t>(hvkvm_hypercall_page_code_end - hvkvm_hypercall_page_code)};
}

}  // namespace hvkvm::vmm
