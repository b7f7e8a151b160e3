// The kernel's version, as the banner and the KVP auto pool report it.
#pragma once

namespace hvkvm::guest {

inline constexpr const char* kKernelVersion = "0.1.0";

}  // namespace hvkvm::guest
