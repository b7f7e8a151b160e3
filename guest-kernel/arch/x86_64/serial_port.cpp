#include "arch/x86_64/serial_port.h"

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest {
namespace {

enum : uint16_t { kData = 0, kInterruptEnable = 1, kFifoControl = 2, kLineControl = 3, kModemControl = 4, kLineStatus = 5 };
constexpr uint8_t kTransmitHoldingEmpty = 0x20;
constexpr uint32_t kFifoDepth = 16;

}  // namespace

void SerialPort::init() {
    x86::outb(base_ + kInterruptEnable, 0x00);
    x86::outb(base_ + kLineControl, 0x80);  // DLAB: divisor follows
    x86::outb(base_ + kData, 0x01);         // 115200 baud
    x86::outb(base_ + kInterruptEnable, 0x00);
    x86::outb(base_ + kLineControl, 0x03);  // 8N1
    x86::outb(base_ + kFifoControl, 0x07);  // enable and clear FIFOs
    x86::outb(base_ + kModemControl, 0x03); // DTR, RTS
    fifo_credit_ = 0;
}

void SerialPort::put(uint8_t byte) {
    if (fifo_credit_ == 0) {
        while (!(x86::inb(base_ + kLineStatus) & kTransmitHoldingEmpty)) x86::pause();
        fifo_credit_ = kFifoDepth;
    }
    x86::outb(base_ + kData, byte);
    --fifo_credit_;
}

void SerialPort::write(const char* text, size_t length) {
    for (size_t i = 0; i < length; ++i) {
        if (text[i] == '\n') put('\r');
        put(static_cast<uint8_t>(text[i]));
    }
}

}  // namespace hvkvm::guest
