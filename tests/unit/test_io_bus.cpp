#include <catch2/catch.hpp>
#include <vector>

#include "device.h"
#include "exits/io_bus.h"

using namespace hvkvm;
using vmm::IoBus;

namespace {

// Records every access and answers reads with (offset + 1) in each byte.
class RecordingDevice final : public vmm::PioHandler, public vmm::MmioHandler {
public:
    struct Access {
        bool write;
        uint64_t base;
        uint64_t offset;
        uint64_t value;
        size_t size;
    };
    std::string_view name() const override { return "recorder"; }
    void pio_read(uint16_t base, uint16_t offset, std::span<uint8_t> data) override { read(base, offset, data); }
    void pio_write(uint16_t base, uint16_t offset, std::span<const uint8_t> data) override { write(base, offset, data); }
    void mmio_read(uint64_t base, uint64_t offset, std::span<uint8_t> data) override { read(base, offset, data); }
    void mmio_write(uint64_t base, uint64_t offset, std::span<const uint8_t> data) override { write(base, offset, data); }
    std::vector<Access> accesses;

private:
    void read(uint64_t base, uint64_t offset, std::span<uint8_t> data) {
        for (auto& byte : data) byte = static_cast<uint8_t>(offset + 1);
        accesses.push_back({false, base, offset, 0, data.size()});
    }
    void write(uint64_t base, uint64_t offset, std::span<const uint8_t> data) {
        accesses.push_back({true, base, offset, devices::load_le(data), data.size()});
    }
};

}  // namespace

TEST_CASE("PIO accesses reach the handler with the range's base and the offset", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_pio(0x3f8, 8, device);

    uint8_t value[2] = {0x34, 0x12};
    CHECK(bus.pio_write(0x3fa, value));
    uint8_t read[1];
    CHECK(bus.pio_read(0x3ff, read));
    CHECK(read[0] == 8);
    REQUIRE(device.accesses.size() == 2);
    CHECK(device.accesses[0].write);
    CHECK(device.accesses[0].base == 0x3f8);
    CHECK(device.accesses[0].offset == 2);
    CHECK(device.accesses[0].value == 0x1234);
    CHECK(device.accesses[1].offset == 7);
    CHECK(bus.pio_handler_name(0x3f8) == "recorder");
    CHECK(bus.pio_handler_name(0x400).empty());
}

TEST_CASE("one handler registered at two ranges tells them apart by base", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_pio(0x1f0, 8, device);
    bus.register_pio(0x170, 8, device);
    uint8_t data[1] = {7};
    CHECK(bus.pio_write(0x1f7, data));
    CHECK(bus.pio_write(0x177, data));
    REQUIRE(device.accesses.size() == 2);
    CHECK(device.accesses[0].base == 0x1f0);
    CHECK(device.accesses[1].base == 0x170);
    CHECK(device.accesses[0].offset == 7);
    CHECK(device.accesses[1].offset == 7);
}

TEST_CASE("an access is dispatched only if it lies entirely inside one range", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_pio(0x3f8, 8, device);
    bus.register_mmio(0xd0000000, 0x1000, device);
    uint8_t four[4] = {};
    CHECK(bus.pio_read(0x3fc, four));         // exact fit: the last four ports
    CHECK_FALSE(bus.pio_read(0x3fd, four));   // one past the end
    CHECK(four[0] == 0xff);                   // unclaimed: all-ones
    CHECK_FALSE(bus.pio_write(0x3fd, four));
    uint8_t eight[8] = {};
    CHECK(bus.mmio_write(0xd0000ff8, eight));         // exact fit
    CHECK_FALSE(bus.mmio_write(0xd0000ff9, eight));   // one past
    CHECK_FALSE(bus.mmio_read(0xcffffffc, eight));    // starts before the range
    CHECK(device.accesses.size() == 2);
}

TEST_CASE("unclaimed addresses read as all-ones and report false", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_pio(0x3f8, 8, device);
    uint8_t data[4] = {};
    CHECK_FALSE(bus.pio_read(0x3f7, data));
    CHECK(data[0] == 0xff);
    CHECK(data[3] == 0xff);
    CHECK_FALSE(bus.pio_read(0x400, data));
    CHECK_FALSE(bus.pio_write(0x400, data));
    uint8_t mmio[8] = {};
    CHECK_FALSE(bus.mmio_read(0xd0000000, mmio));
    CHECK(mmio[7] == 0xff);
}

TEST_CASE("MMIO ranges are found by address", "[io-bus]") {
    IoBus bus;
    RecordingDevice low, high;
    bus.register_mmio(0xd0000000, 0x1000, low);
    bus.register_mmio(0xd0001000, 0x1000, high);
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(bus.mmio_write(0xd0000ff8, data));
    CHECK(bus.mmio_write(0xd0001000, data));
    CHECK_FALSE(bus.mmio_write(0xd0002000, data));
    REQUIRE(low.accesses.size() == 1);
    CHECK(low.accesses[0].offset == 0xff8);
    CHECK(low.accesses[0].value == 0x0807060504030201ull);
    REQUIRE(high.accesses.size() == 1);
    CHECK(high.accesses[0].base == 0xd0001000);
    CHECK(high.accesses[0].offset == 0);
}

TEST_CASE("overlapping and out-of-space registrations are refused", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_pio(0x3f8, 8, device);
    CHECK_THROWS_AS(bus.register_pio(0x3f0, 9, device), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_pio(0x3ff, 1, device), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_pio(0x3f9, 2, device), std::invalid_argument);
    CHECK_NOTHROW(bus.register_pio(0x3f0, 8, device));
    CHECK_NOTHROW(bus.register_pio(0x400, 1, device));
    CHECK_NOTHROW(bus.register_pio(0xfff0, 0x10, device));    // ends exactly at the top of the port space
    CHECK_THROWS_AS(bus.register_pio(0xffe0, 0x11, device), std::invalid_argument);  // one port past it
    CHECK_THROWS_AS(bus.register_pio(0x10, 0, device), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_mmio(0x1000, 0, device), std::invalid_argument);
    CHECK_NOTHROW(bus.register_mmio(~0ull - 0xfff, 0xfff, device));    // ends at the last byte: 2^64 - 1
    CHECK_THROWS_AS(bus.register_mmio(~0ull - 0xfff, 0x1001, device), std::invalid_argument);  // wraps
}

TEST_CASE("an access at the very top of the address space does not wrap into low ranges", "[io-bus]") {
    IoBus bus;
    RecordingDevice device;
    bus.register_mmio(0, 0x1000, device);
    bus.register_pio(0xfffc, 4, device);
    uint8_t data[8] = {};
    CHECK_FALSE(bus.mmio_read(~0ull - 3, data));  // [2^64 - 4, 2^64 + 4) would wrap to 0
    uint8_t four[4] = {};
    CHECK(bus.pio_read(0xfffc, four));
    CHECK(device.accesses.size() == 1);
}
