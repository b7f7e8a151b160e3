#include <catch2/catch.hpp>
#include <string>

#include "emulated/uart16550.h"

using namespace hvkvm::devices;

namespace {

class StringSink final : public ByteSink {
public:
    void write(std::span<const uint8_t> bytes) override {
        writes.emplace_back(bytes.begin(), bytes.end());
    }
    std::vector<std::string> writes;
};

void out(Uart16550& uart, uint16_t offset, uint8_t value) { uart.pio_write(Uart16550::kCom1Base, offset, std::span<const uint8_t>(&value, 1)); }
uint8_t in(Uart16550& uart, uint16_t offset) {
    uint8_t value = 0;
    uart.pio_read(Uart16550::kCom1Base, offset, std::span<uint8_t>(&value, 1));
    return value;
}

}  // namespace

TEST_CASE("the UART delivers output a line at a time", "[uart]") {
    StringSink sink;
    Uart16550 uart(sink);
    for (char c : std::string("hello\nwor")) out(uart, 0, static_cast<uint8_t>(c));
    REQUIRE(sink.writes.size() == 1);
    CHECK(sink.writes[0] == "hello\n");
    uart.flush();  // a partial line is not lost at VM stop
    REQUIRE(sink.writes.size() == 2);
    CHECK(sink.writes[1] == "wor");
}

TEST_CASE("CR LF line ends reach the host console as LF", "[uart]") {
    StringSink sink;
    Uart16550 uart(sink);
    for (char c : std::string("a\r\nb\rc\n")) out(uart, 0, static_cast<uint8_t>(c));
    REQUIRE(sink.writes.size() == 2);
    CHECK(sink.writes[0] == "a\n");
    CHECK(sink.writes[1] == "b\rc\n");  // a lone CR is the guest's business
}

TEST_CASE("the transmitter is always ready and there is no input", "[uart]") {
    StringSink sink;
    Uart16550 uart(sink);
    CHECK((in(uart, 5) & 0x60) == 0x60);  // LSR: THRE and TEMT
    CHECK((in(uart, 5) & 0x01) == 0);     // no data ready
    CHECK(in(uart, 2) == 0x01);           // IIR: no interrupt, FIFOs off
    out(uart, 2, 0x07);
    CHECK(in(uart, 2) == 0xc1);           // FIFOs on
}

TEST_CASE("the divisor latch hides data and interrupt-enable registers", "[uart]") {
    StringSink sink;
    Uart16550 uart(sink);
    out(uart, 3, 0x83);  // DLAB=1, 8N1
    out(uart, 0, 0x0c);  // divisor low: 9600 baud
    out(uart, 1, 0x00);
    CHECK(in(uart, 0) == 0x0c);
    out(uart, 3, 0x03);  // DLAB=0
    out(uart, 1, 0x0f);
    CHECK(in(uart, 1) == 0x0f);
    CHECK(sink.writes.empty());  // divisor writes are not output
    out(uart, 7, 0x5a);
    CHECK(in(uart, 7) == 0x5a);   // scratch register
}

TEST_CASE("loopback mode sends nothing to the console", "[uart]") {
    StringSink sink;
    Uart16550 uart(sink);
    out(uart, 4, 0x10);
    out(uart, 0, 'x');
    uart.flush();
    CHECK(sink.writes.empty());
}
