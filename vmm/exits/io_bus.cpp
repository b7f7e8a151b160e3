#include "exits/io_bus.h"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>

#include "hvkvm/abi/align.h"

namespace hvkvm::vmm {

template <typename Handler>
void IoBus::insert(RangeMap<Handler>& map, uint64_t base, uint64_t length, uint64_t space_end, Handler& handler) {
    uint64_t end = 0;
    if (length == 0) throw std::invalid_argument(fmt::format("{}: empty range at {:#x}", handler.name(), base));
    if (!abi::range_end(base, length, end) || (space_end != 0 && end > space_end))
        throw std::invalid_argument(
            fmt::format("{}: range {:#x}+{:#x} reaches past the end of the address space", handler.name(), base, length));
    auto overlaps = [&](const Range<Handler>& other) { return base < other.base + other.length && other.base < end; };
    auto next = map.lower_bound(base);
    if (next != map.end() && overlaps(next->second))
        throw std::invalid_argument(fmt::format("{} at {:#x} overlaps {}", handler.name(), base, next->second.handler->name()));
    if (next != map.begin() && overlaps(std::prev(next)->second))
        throw std::invalid_argument(
            fmt::format("{} at {:#x} overlaps {}", handler.name(), base, std::prev(next)->second.handler->name()));
    map.emplace(base, Range<Handler>{base, length, &handler});
}

template <typename Handler>
const IoBus::Range<Handler>* IoBus::find(const RangeMap<Handler>& map, uint64_t address, uint64_t size) {
    auto it = map.upper_bound(address);
    if (it == map.begin()) return nullptr;
    const Range<Handler>& range = std::prev(it)->second;
    return abi::range_within(address, size, range.base, range.length) ? &range : nullptr;
}

void IoBus::register_pio(uint16_t base, uint32_t length, PioHandler& handler) {
    insert(pio_, base, length, kPortSpace, handler);
}

void IoBus::register_mmio(uint64_t base, uint64_t length, MmioHandler& handler) {
    insert(mmio_, base, length, /*space_end: all of 2^64*/ 0, handler);
}

bool IoBus::pio_read(uint16_t port, std::span<uint8_t> data) const {
    const auto* range = find(pio_, port, data.size());
    if (!range) {
        std::fill(data.begin(), data.end(), 0xff);
        return false;
    }
    range->handler->pio_read(static_cast<uint16_t>(range->base), static_cast<uint16_t>(port - range->base), data);
    return true;
}

bool IoBus::pio_write(uint16_t port, std::span<const uint8_t> data) const {
    const auto* range = find(pio_, port, data.size());
    if (!range) return false;
    range->handler->pio_write(static_cast<uint16_t>(range->base), static_cast<uint16_t>(port - range->base), data);
    return true;
}

bool IoBus::mmio_read(uint64_t address, std::span<uint8_t> data) const {
    const auto* range = find(mmio_, address, data.size());
    if (!range) {
        std::fill(data.begin(), data.end(), 0xff);
        return false;
    }
    range->handler->mmio_read(range->base, address - range->base, data);
    return true;
}

bool IoBus::mmio_write(uint64_t address, std::span<const uint8_t> data) const {
    const auto* range = find(mmio_, address, data.size());
    if (!range) return false;
    range->handler->mmio_write(range->base, address - range->base, data);
    return true;
}

std::string_view IoBus::pio_handler_name(uint16_t port) const {
    const auto* range = find(pio_, port, 1);
    return range ? range->handler->name() : std::string_view{};
}

}  // namespace hvkvm::vmm
