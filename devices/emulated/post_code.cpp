// The POST code port (abi::kPostCodePort): the guest writes one byte per boot phase, as a PC BIOS
// does, and the end-of-run report shows the last one, which tells how far a guest that hung or
// was stopped had come.
#include <atomic>
#include <fmt/format.h>
#include <memory>

#include "device.h"
#include "exits/io_bus.h"
#include "hvkvm/abi/devices.h"

namespace hvkvm::devices {
namespace {

class PostCodePort final : public Device, public vmm::PioHandler {
public:
    explicit PostCodePort(DeviceContext& context) { context.bus.register_pio(abi::kPostCodePort, 1, *this); }

    std::string_view name() const override { return "post-code"; }
    void pio_read(uint16_t, uint16_t, std::span<uint8_t> data) override { data[0] = last_code_.load(); }
    void pio_write(uint16_t, uint16_t, std::span<const uint8_t> data) override {
        last_code_.store(data[0]);
        writes_.fetch_add(1, std::memory_order_relaxed);
    }
    void reset() override { last_code_ = 0, writes_ = 0; }
    std::string report() const override {
        if (writes_ == 0) return "no POST code written";
        return fmt::format("last POST code {:#04x} ({} written)", last_code_.load(), writes_.load());
    }

private:
    std::atomic<uint8_t> last_code_{0};
    std::atomic<uint64_t> writes_{0};
};

}  // namespace

extern const DeviceType kPostCodeDevice{
    "post-code", always_present, [](DeviceContext& context) -> std::unique_ptr<Device> {
        return std::make_unique<PostCodePort>(context);
    }};

}  // namespace hvkvm::devices
