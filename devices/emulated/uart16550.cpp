#include "emulated/uart16550.h"

namespace hvkvm::devices {
namespace {

enum Register : uint16_t {
    kData = 0,            // RBR (read) / THR (write); DLL when DLAB=1
    kInterruptEnable = 1, // IER; DLM when DLAB=1
    kInterruptId = 2,     // IIR (read) / FCR (write)
    kLineControl = 3,
    kModemControl = 4,
    kLineStatus = 5,
    kModemStatus = 6,
    kScratch = 7,
};

constexpr uint8_t kLsrTransmitHoldingEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;
constexpr uint8_t kIirNoInterrupt = 0x01;
constexpr uint8_t kIirFifosEnabled = 0xc0;
constexpr uint8_t kFcrEnableFifo = 0x01;
constexpr uint8_t kMsrCarrierDsrCts = 0xb0;
constexpr uint8_t kMcrLoopback = 0x10;

}  // namespace

void Uart16550::pio_read(uint16_t, uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_register(static_cast<uint16_t>((offset + i) % kRegisterCount));
}

void Uart16550::pio_write(uint16_t, uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) write_register(static_cast<uint16_t>((offset + i) % kRegisterCount), data[i]);
}

uint8_t Uart16550::read_register(uint16_t offset) {
    switch (offset) {
    case kData: return divisor_latch() ? divisor_low_ : 0;  // no input: receive buffer empty
    case kInterruptEnable: return divisor_latch() ? divisor_high_ : interrupt_enable_;
    case kInterruptId: return kIirNoInterrupt | ((fifo_control_ & kFcrEnableFifo) ? kIirFifosEnabled : 0);
    case kLineControl: return line_control_;
    case kModemControl: return modem_control_;
    case kLineStatus: return kLsrTransmitHoldingEmpty | kLsrTransmitterEmpty;
    case kModemStatus: return (modem_control_ & kMcrLoopback) ? 0 : kMsrCarrierDsrCts;
    case kScratch: return scratch_;
    }
    return 0xff;
}

void Uart16550::write_register(uint16_t offset, uint8_t value) {
    switch (offset) {
    case kData:
        if (divisor_latch()) divisor_low_ = value;
        else if (!(modem_control_ & kMcrLoopback)) transmit(value);
        return;
    case kInterruptEnable:
        if (divisor_latch()) divisor_high_ = value;
        else interrupt_enable_ = value & 0x0f;
        return;
    case kInterruptId: fifo_control_ = value; return;
    case kLineControl: line_control_ = value; return;
    case kModemControl: modem_control_ = value & 0x1f; return;
    case kScratch: scratch_ = value; return;
    default: return;  // LSR and MSR are read-only
    }
}

void Uart16550::transmit(uint8_t byte) {
    // A serial console ends lines with CR LF; the host's console and log files want LF.
    if (byte == '\n' && !pending_line_.empty() && pending_line_.back() == '\r') pending_line_.pop_back();
    pending_line_.push_back(static_cast<char>(byte));
    if (byte == '\n' || pending_line_.size() >= kLineLimit) {
        sink_.write({reinterpret_cast<const uint8_t*>(pending_line_.data()), pending_line_.size()});
        pending_line_.clear();
    }
}

void Uart16550::flush() {
    std::lock_guard lock(mutex_);
    if (pending_line_.empty()) return;
    sink_.write({reinterpret_cast<const uint8_t*>(pending_line_.data()), pending_line_.size()});
    pending_line_.clear();
}

}  // namespace hvkvm::devices
