// The guest's control ports to the VMM (abi::kDebugExitPort, kBootMilestonePort, kStartVcpuPort):
// the guest ends the run with a status, marks boot milestones so that the VMM can time them, and
// asks for secondary vCPUs to be started.
#pragma once

#include <cstdint>
#include <string_view>

#include "device.h"

namespace hvkvm::devices {

class DebugDevice final : public PioDevice {
public:
    class Listener {
    public:
        virtual ~Listener() = default;
        virtual void on_guest_exit(uint32_t exit_code) = 0;       // abi::GuestExitCode (unchecked)
        virtual void on_boot_milestone(uint32_t phase) = 0;       // abi::BootPhase (unchecked)
        virtual void on_start_vcpu(uint32_t request_gpa) = 0;     // abi::VcpuStartRequest (unchecked)
    };

    static constexpr uint16_t kPortCount = 12;  // kDebugExitPort .. kStartVcpuPort + 3

    explicit DebugDevice(Listener& listener) : listener_(listener) {}

    std::string_view name() const override { return "debug-device"; }
    void pio_read(uint16_t offset, std::span<uint8_t> data) override;
    void pio_write(uint16_t offset, std::span<const uint8_t> data) override;

private:
    Listener& listener_;
};

}  // namespace hvkvm::devices
