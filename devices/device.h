// Interfaces through which the VMM's exit dispatcher reaches emulated devices (the intercept
// path: every register access is one VM exit). Devices are registered before any vCPU runs and
// may be called from several vCPU threads at once, so each device guards its own state.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace hvkvm::devices {

class PioDevice {
public:
    virtual ~PioDevice() = default;
    virtual std::string_view name() const = 0;
    // `offset` is relative to the device's registered base port; data.size() is 1, 2 or 4.
    virtual void pio_read(uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void pio_write(uint16_t offset, std::span<const uint8_t> data) = 0;
};

class MmioDevice {
public:
    virtual ~MmioDevice() = default;
    virtual std::string_view name() const = 0;
    // `offset` is relative to the device's registered base address; data.size() is 1..8.
    virtual void mmio_read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void mmio_write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// Little-endian access to the 1/2/4/8-byte data of an exit.
inline uint64_t load_le(std::span<const uint8_t> data) {
    uint64_t value = 0;
    for (size_t i = data.size(); i-- > 0;) value = (value << 8) | data[i];
    return value;
}

inline void store_le(std::span<uint8_t> data, uint64_t value) {
    for (auto& byte : data) byte = static_cast<uint8_t>(value), value >>= 8;
}

}  // namespace hvkvm::devices
