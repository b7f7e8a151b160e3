#include "emulated/debug_device.h"

#include <algorithm>

#include "hvkvm/abi/boot.h"

namespace hvkvm::devices {

static_assert(abi::kBootMilestonePort - abi::kDebugExitPort == 4);
static_assert(abi::kStartVcpuPort - abi::kDebugExitPort == 8);

void DebugDevice::pio_read(uint16_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xff);  // write-only ports
}

void DebugDevice::pio_write(uint16_t offset, std::span<const uint8_t> data) {
    const auto value = static_cast<uint32_t>(load_le(data));
    if (offset == 0) listener_.on_guest_exit(value);
    else if (offset == abi::kBootMilestonePort - abi::kDebugExitPort) listener_.on_boot_milestone(value);
    else if (offset == abi::kStartVcpuPort - abi::kDebugExitPort) listener_.on_start_vcpu(value);
}

}  // namespace hvkvm::devices
