// Every device type the VMM can build. Adding a device: its own file defining a DeviceType, and
// one line in catalog.cpp.
#pragma once

#include <span>

#include "device.h"

namespace hvkvm::devices {

std::span<const DeviceType* const> device_catalog();

}  // namespace hvkvm::devices
