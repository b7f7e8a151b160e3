// The guest's control ports to the VMM (abi::kDebugExitPort, kBootMilestonePort, kStartVcpuPort,
// kStatsWindowPort): the guest ends the run with a status, marks boot milestones so that the VMM
// can time them, asks for secondary vCPUs to be started, and opens and closes the measurement
// window of a benchmark. Only 32-bit writes to the first byte of each port are commands; anything
// else is ignored (reads return all-ones).
#include <algorithm>
#include <memory>

#include "device.h"
#include "exits/io_bus.h"
#include "hvkvm/abi/boot.h"

namespace hvkvm::devices {
namespace {

class DebugDevice final : public Device, public vmm::PioHandler {
public:
    static constexpr uint16_t kPortCount = 12;  // kDebugExitPort .. kStartVcpuPort + 3
    static_assert(abi::kBootMilestonePort - abi::kDebugExitPort == 4);
    static_assert(abi::kStartVcpuPort - abi::kDebugExitPort == 8);

    explicit DebugDevice(DeviceContext& context) : control_(context.control) {
        context.bus.register_pio(abi::kDebugExitPort, kPortCount, *this);
        context.bus.register_pio(abi::kStatsWindowPort, 4, *this);  // below the others: 0xf0 is the POST code port
    }

    std::string_view name() const override { return "debug-device"; }

    void pio_read(uint16_t, uint16_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }

    void pio_write(uint16_t base, uint16_t offset, std::span<const uint8_t> data) override {
        if (data.size() != 4) return;
        const auto value = static_cast<uint32_t>(load_le(data));
        if (base == abi::kStatsWindowPort) {
            if (offset == 0) control_.on_stats_window(value);
            return;
        }
        switch (offset) {
        case 0: control_.on_guest_exit(value); return;
        case abi::kBootMilestonePort - abi::kDebugExitPort: control_.on_boot_milestone(value); return;
        case abi::kStartVcpuPort - abi::kDebugExitPort: control_.on_start_vcpu(value); return;
        default: return;
        }
    }

private:
    PartitionControl& control_;
};

}  // namespace

extern const DeviceType kDebugDeviceType{
    "debug-device", always_present, [](DeviceContext& context) -> std::unique_ptr<Device> {
        return std::make_unique<DebugDevice>(context);
    }};

}  // namespace hvkvm::devices
