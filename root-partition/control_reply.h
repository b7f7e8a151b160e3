// How the root partition answers a management request (`vmm ctl`, the VMM's own shutdown): the
// VMBus host or a VSP takes the request and calls its reply exactly once, at once or when the
// guest has answered (root_partition.cpp turns the call into a kControlResponse link message).
#pragma once

#include <functional>

#include <nlohmann/json.hpp>

namespace hvkvm::root {

using ControlReply = std::function<void(nlohmann::json answer)>;

}  // namespace hvkvm::root
