// Checks on the boot info the VMM handed over, before the kernel relies on any of it.
#pragma once

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest {

// Returns nullptr if valid, else a description of the first problem. `cmdline` is the memory at
// info.cmdline_gpa (passed in so that the host's unit tests can run this same check).
const char* validate_boot_info(const abi::BootInfo& info, const char* cmdline);

}  // namespace hvkvm::guest
