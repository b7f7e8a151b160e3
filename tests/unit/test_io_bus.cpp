#include <catch2/catch.hpp>
#include <vector>

#include "exits/io_bus.h"

using namespace hvkvm;

namespace {

// Records every access and answers reads with (offset + 1) in each byte.
class RecordingDevice final : public devices::PioDevice, public devices::MmioDevice {
public:
    struct Access {
        bool write;
        uint64_t offset;
        uint64_t value;
        size_t size;
    };
    std::string_view name() const override { return "recorder"; }
    void pio_read(uint16_t offset, std::span<uint8_t> data) override { read(offset, data); }
    void pio_write(uint16_t offset, std::span<const uint8_t> data) override { write(offset, data); }
    void mmio_read(uint64_t offset, std::span<uint8_t> data) override { read(offset, data); }
    void mmio_write(uint64_t offset, std::span<const uint8_t> data) override { write(offset, data); }
    std::vector<Access> accesses;

private:
    void read(uint64_t offset, std::span<uint8_t> data) {
        for (auto& byte : data) byte = static_cast<uint8_t>(offset + 1);
        accesses.push_back({false, offset, 0, data.size()});
    }
    void write(uint64_t offset, std::span<const uint8_t> data) {
        accesses.push_back({true, offset, devices::load_le(data), data.size()});
    }
};

}  // namespace

TEST_CASE("PIO accesses reach the device with offsets relative to its base", "[io-bus]") {
    vmm::IoBus bus;
    auto device = std::make_shared<RecordingDevice>();
    bus.register_pio(0x3f8, 8, device);

    uint8_t value[2] = {0x34, 0x12};
    CHECK(bus.pio_write(0x3fa, value));
    uint8_t read[1];
    CHECK(bus.pio_read(0x3ff, read));
    CHECK(read[0] == 8);
    REQUIRE(device->accesses.size() == 2);
    CHECK(device->accesses[0].write);
    CHECK(device->accesses[0].offset == 2);
    CHECK(device->accesses[0].value == 0x1234);
    CHECK(device->accesses[1].offset == 7);
    CHECK(bus.pio_device_name(0x3f8) == "recorder");
    CHECK(bus.pio_device_name(0x400).empty());
}

TEST_CASE("unclaimed addresses read as all-ones and report false", "[io-bus]") {
    vmm::IoBus bus;
    bus.register_pio(0x3f8, 8, std::make_shared<RecordingDevice>());
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
    vmm::IoBus bus;
    auto low = std::make_shared<RecordingDevice>();
    auto high = std::make_shared<RecordingDevice>();
    bus.register_mmio(0xd0000000, 0x1000, low);
    bus.register_mmio(0xd0001000, 0x1000, high);
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(bus.mmio_write(0xd0000ff8, data));
    CHECK(bus.mmio_write(0xd0001000, data));
    CHECK_FALSE(bus.mmio_write(0xd0002000, data));
    REQUIRE(low->accesses.size() == 1);
    CHECK(low->accesses[0].offset == 0xff8);
    CHECK(low->accesses[0].value == 0x0807060504030201ull);
    REQUIRE(high->accesses.size() == 1);
    CHECK(high->accesses[0].offset == 0);
}

TEST_CASE("overlapping registrations are refused", "[io-bus]") {
    vmm::IoBus bus;
    bus.register_pio(0x3f8, 8, std::make_shared<RecordingDevice>());
    CHECK_THROWS_AS(bus.register_pio(0x3f0, 9, std::make_shared<RecordingDevice>()), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_pio(0x3ff, 1, std::make_shared<RecordingDevice>()), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_pio(0x3f9, 2, std::make_shared<RecordingDevice>()), std::invalid_argument);
    CHECK_NOTHROW(bus.register_pio(0x3f0, 8, std::make_shared<RecordingDevice>()));
    CHECK_NOTHROW(bus.register_pio(0x400, 1, std::make_shared<RecordingDevice>()));
    CHECK_THROWS_AS(bus.register_pio(0xfff0, 0x20, std::make_shared<RecordingDevice>()), std::invalid_argument);
    CHECK_THROWS_AS(bus.register_mmio(0x1000, 0, std::make_shared<RecordingDevice>()), std::invalid_argument);
}
