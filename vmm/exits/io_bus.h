// Routes PIO and MMIO exits to the device registered for the address. Registration happens while
// the machine is being built; afterwards the bus is read-only and safe to use from every vCPU
// thread without locking.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "device.h"

namespace hvkvm::vmm {

class IoBus {
public:
    // Throws std::invalid_argument if the range overlaps an existing registration.
    void register_pio(uint16_t base, uint16_t length, std::shared_ptr<devices::PioDevice> device);
    void register_mmio(uint64_t base, uint64_t length, std::shared_ptr<devices::MmioDevice> device);

    // Return false when nothing is registered at the address. An unclaimed read leaves the data
    // all-ones, as an unpopulated ISA/PCI address reads on real hardware.
    bool pio_read(uint16_t port, std::span<uint8_t> data) const;
    bool pio_write(uint16_t port, std::span<const uint8_t> data) const;
    bool mmio_read(uint64_t address, std::span<uint8_t> data) const;
    bool mmio_write(uint64_t address, std::span<const uint8_t> data) const;

    // The name of the device at an address, for exit statistics ("" if none).
    std::string_view pio_device_name(uint16_t port) const;

private:
    template <typename Device>
    struct Range {
        uint64_t length;
        std::shared_ptr<Device> device;
    };
    template <typename Device>
    using RangeMap = std::map<uint64_t, Range<Device>>;  // keyed by base address

    template <typename Device>
    static void insert(RangeMap<Device>& map, uint64_t base, uint64_t length, std::shared_ptr<Device> device);
    template <typename Device>
    static const std::pair<const uint64_t, Range<Device>>* find(const RangeMap<Device>& map, uint64_t address);

    RangeMap<devices::PioDevice> pio_;
    RangeMap<devices::MmioDevice> mmio_;
};

}  // namespace hvkvm::vmm
