// A 16550A UART as seen at COM1: enough register behaviour for a polled console driver (and for
// Linux-style probing), with the transmitter always ready. Output is line-buffered into a
// ByteSink so that one guest line reaches the console in one host write.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "console/byte_sink.h"
#include "exits/io_bus.h"

namespace hvkvm::devices {

class Uart16550 final : public vmm::PioHandler {
public:
    static constexpr uint16_t kCom1Base = 0x3f8;
    static constexpr uint16_t kRegisterCount = 8;

    explicit Uart16550(ByteSink& sink) : sink_(sink) {}
    ~Uart16550() override { flush(); }

    std::string_view name() const override { return "uart16550"; }
    void pio_read(uint16_t base, uint16_t offset, std::span<uint8_t> data) override;
    void pio_write(uint16_t base, uint16_t offset, std::span<const uint8_t> data) override;

    // Sends any partial line to the sink (at VM stop, so nothing the guest wrote is lost).
    void flush();

private:
    uint8_t read_register(uint16_t offset);
    void write_register(uint16_t offset, uint8_t value);
    void transmit(uint8_t byte);
    bool divisor_latch() const { return (line_control_ & 0x80) != 0; }

    static constexpr size_t kLineLimit = 4096;

    ByteSink& sink_;
    std::mutex mutex_;
    std::string pending_line_;
    uint8_t interrupt_enable_ = 0;
    uint8_t fifo_control_ = 0;
    uint8_t line_control_ = 0x03;  // 8N1
    uint8_t modem_control_ = 0;
    uint8_t scratch_ = 0;
    uint8_t divisor_low_ = 0x01;   // 115200 baud
    uint8_t divisor_high_ = 0;
};

}  // namespace hvkvm::devices
