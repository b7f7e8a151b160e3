#include "exits/io_bus.h"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

namespace hvkvm::vmm {

template <typename Device>
void IoBus::insert(RangeMap<Device>& map, uint64_t base, uint64_t length, std::shared_ptr<Device> device) {
    if (length == 0) throw std::invalid_argument("empty device range");
    auto next = map.lower_bound(base);
    if (next != map.end() && next->first < base + length)
        throw std::invalid_argument(fmt::format("{} at {:#x} overlaps {}", device->name(), base,
                                                next->second.device->name()));
    if (next != map.begin()) {
        auto previous = std::prev(next);
        if (previous->first + previous->second.length > base)
            throw std::invalid_argument(fmt::format("{} at {:#x} overlaps {}", device->name(), base,
                                                    previous->second.device->name()));
    }
    map.emplace(base, Range<Device>{length, std::move(device)});
}

template <typename Device>
const std::pair<const uint64_t, IoBus::Range<Device>>* IoBus::find(const RangeMap<Device>& map, uint64_t address) {
    auto it = map.upper_bound(address);
    if (it == map.begin()) return nullptr;
    --it;
    return address - it->first < it->second.length ? &*it : nullptr;
}

void IoBus::register_pio(uint16_t base, uint16_t length, std::shared_ptr<devices::PioDevice> device) {
    if (uint32_t{base} + length > 0x10000) throw std::invalid_argument("port range beyond 0xffff");
    insert(pio_, base, length, std::move(device));
}

void IoBus::register_mmio(uint64_t base, uint64_t length, std::shared_ptr<devices::MmioDevice> device) {
    insert(mmio_, base, length, std::move(device));
}

bool IoBus::pio_read(uint16_t port, std::span<uint8_t> data) const {
    const auto* entry = find(pio_, port);
    if (!entry) {
        std::fill(data.begin(), data.end(), 0xff);
        return false;
    }
    entry->second.device->pio_read(static_cast<uint16_t>(port - entry->first), data);
    return true;
}

bool IoBus::pio_write(uint16_t port, std::span<const uint8_t> data) const {
    const auto* entry = find(pio_, port);
    if (!entry) return false;
    entry->second.device->pio_write(static_cast<uint16_t>(port - entry->first), data);
    return true;
}

bool IoBus::mmio_read(uint64_t address, std::span<uint8_t> data) const {
    const auto* entry = find(mmio_, address);
    if (!entry) {
        std::fill(data.begin(), data.end(), 0xff);
        return false;
    }
    entry->second.device->mmio_read(address - entry->first, data);
    return true;
}

bool IoBus::mmio_write(uint64_t address, std::span<const uint8_t> data) const {
    const auto* entry = find(mmio_, address);
    if (!entry) return false;
    entry->second.device->mmio_write(address - entry->first, data);
    return true;
}

std::string_view IoBus::pio_device_name(uint16_t port) const {
    const auto* entry = find(pio_, port);
    return entry ? entry->second.device->name() : std::string_view{};
}

}  // namespace hvkvm::vmm
