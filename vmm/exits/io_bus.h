// Routes PIO and MMIO exits to the handler registered for the address. Registration happens while
// the partition's devices are created; afterwards the bus is read-only and safe to use from every
// vCPU thread without locking.
//
// Handlers are not owned: the device list that owns them outlives every vCPU thread. An access is
// dispatched only if it lies entirely inside one registered range; range arithmetic is
// overflow-checked, so a range can neither wrap nor reach past the end of the address space.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string_view>

namespace hvkvm::vmm {

// A device's port-I/O registers. `base` is the first port of the range the handler registered
// (one handler may register several ranges), `offset` the accessed port minus `base`;
// data.size() is 1, 2 or 4 and the whole access lies inside the range.
class PioHandler {
public:
    virtual ~PioHandler() = default;
    virtual std::string_view name() const = 0;
    virtual void pio_read(uint16_t base, uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void pio_write(uint16_t base, uint16_t offset, std::span<const uint8_t> data) = 0;
};

// A device's MMIO registers, likewise; data.size() is 1..8.
class MmioHandler {
public:
    virtual ~MmioHandler() = default;
    virtual std::string_view name() const = 0;
    virtual void mmio_read(uint64_t base, uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void mmio_write(uint64_t base, uint64_t offset, std::span<const uint8_t> data) = 0;
};

class IoBus {
public:
    static constexpr uint32_t kPortSpace = 0x10000;

    // Throw std::invalid_argument for an empty range, one that overlaps an existing registration,
    // or one that reaches past the end of its address space.
    void register_pio(uint16_t base, uint32_t length, PioHandler& handler);
    void register_mmio(uint64_t base, uint64_t length, MmioHandler& handler);

    // Return false when no single range holds the whole access. An unclaimed read leaves the
    // data all-ones, as an unpopulated ISA/PCI address reads on real hardware.
    bool pio_read(uint16_t port, std::span<uint8_t> data) const;
    bool pio_write(uint16_t port, std::span<const uint8_t> data) const;
    bool mmio_read(uint64_t address, std::span<uint8_t> data) const;
    bool mmio_write(uint64_t address, std::span<const uint8_t> data) const;

    // The name of the handler that would take a 1-byte access at the port ("" if none), for
    // exit statistics.
    std::string_view pio_handler_name(uint16_t port) const;

private:
    template <typename Handler>
    struct Range {
        uint64_t base;
        uint64_t length;
        Handler* handler;
    };
    template <typename Handler>
    using RangeMap = std::map<uint64_t, Range<Handler>>;  // keyed by base address

    template <typename Handler>
    static void insert(RangeMap<Handler>& map, uint64_t base, uint64_t length, uint64_t space_end, Handler& handler);
    template <typename Handler>
    static const Range<Handler>* find(const RangeMap<Handler>& map, uint64_t address, uint64_t size);

    RangeMap<PioHandler> pio_;
    RangeMap<MmioHandler> mmio_;
};

}  // namespace hvkvm::vmm
