// The instructions the VMM writes into the guest's hypercall page (see hypercall_page.S).
#pragma once

#include <cstdint>
#include <span>

namespace hvkvm::vmm {

std::span<const uint8_t> hypercall_page_code();

}  // namespace hvkvm::vmm
