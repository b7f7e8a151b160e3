// Polled 16550 UART output (COM1): the early console. Every register access is a PIO exit, so the
// driver checks the transmitter only once per FIFO's worth of bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::guest {

class SerialPort {
public:
    explicit SerialPort(uint16_t base) : base_(base) {}
    void init();  // 115200 8N1, FIFOs on, interrupts off
    void write(const char* text, size_t length);

private:
    void put(uint8_t byte);

    uint16_t base_;
    uint32_t fifo_credit_ = 0;  // bytes that may be written before LSR must be polled again
};

}  // namespace hvkvm::guest
