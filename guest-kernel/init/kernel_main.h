#pragma once

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest {

// The kernel proper, entered on vCPU 0 once the platform and the console are up.
[[noreturn]] void kernel_main(const abi::BootInfo& boot_info);

}  // namespace hvkvm::guest
