// The guest console: a 16550 UART at COM1 (the early console, one exit per byte) and the
// hypervisor's console message connection (HvPostMessage, one exit per line), both writing to
// the VMM's console output in the order the guest wrote them.
#include <memory>

#include "device.h"
#include "emulated/uart16550.h"
#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypervisor.h"

namespace hvkvm::devices {
namespace {

class ConsoleDevice final : public Device {
public:
    explicit ConsoleDevice(DeviceContext& context) : console_(context.console), uart_(context.console) {
        context.bus.register_pio(Uart16550::kCom1Base, Uart16550::kRegisterCount, uart_);
        context.hypervisor.add_message_connection(
            abi::hv::kConsoleConnectionId, [this](uint32_t type, std::span<const uint8_t> text) {
                if (type != abi::hv::kMessageTypeConsoleText) return abi::hv::Status::kInvalidParameter;
                uart_.flush();  // keep the console in order with what the UART already has
                console_.write(text);
                return abi::hv::Status::kSuccess;
            });
    }

    std::string_view name() const override { return "console"; }
    void stop() override { uart_.flush(); }  // nothing the guest wrote is lost

private:
    ByteSink& console_;
    Uart16550 uart_;
};

}  // namespace

extern const DeviceType kConsoleDevice{
    "console", always_present, [](DeviceContext& context) -> std::unique_ptr<Device> {
        return std::make_unique<ConsoleDevice>(context);
    }};

}  // namespace hvkvm::devices
