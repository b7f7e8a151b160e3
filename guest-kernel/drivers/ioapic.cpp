#include "drivers/ioapic.h"

#include "hvkvm/abi/boot.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::ioapic {
namespace {

constexpr uint32_t kRegisterSelect = 0x00;  // IOREGSEL
constexpr uint32_t kRegisterWindow = 0x10;  // IOWIN
constexpr uint32_t kVersionRegister = 0x01;
constexpr uint32_t kRedirectionTable = 0x10;  // two registers per pin: low, high

constexpr uint32_t kLevelTriggered = 1u << 15;
constexpr uint32_t kMasked = 1u << 16;

// Select-then-access pairs must not interleave between CPUs.
struct IoApic {
    SpinLock lock;
    uint32_t pins = 0;
} ioapic;

volatile uint32_t* mmio(uint32_t offset) { return reinterpret_cast<volatile uint32_t*>(abi::kIoApicGpa + offset); }

uint32_t read_locked(uint32_t reg) {
    *mmio(kRegisterSelect) = reg;
    return *mmio(kRegisterWindow);
}

void write_locked(uint32_t reg, uint32_t value) {
    *mmio(kRegisterSelect) = reg;
    *mmio(kRegisterWindow) = value;
}

}  // namespace

void init() {
    IrqSpinLockGuard guard(ioapic.lock);
    ioapic.pins = ((read_locked(kVersionRegister) >> 16) & 0xff) + 1;
    for (uint32_t pin = 0; pin < ioapic.pins; ++pin) write_locked(kRedirectionTable + 2 * pin, kMasked);
}

uint32_t pin_count() { return ioapic.pins; }

bool route(uint32_t pin, uint8_t vector, uint32_t destination, Trigger trigger) {
    if (pin >= ioapic.pins) return false;
    IrqSpinLockGuard guard(ioapic.lock);
    // Masked while the destination changes, so no interrupt goes out half-programmed.
    write_locked(kRedirectionTable + 2 * pin, kMasked);
    write_locked(kRedirectionTable + 2 * pin + 1, destination << 24);
    write_locked(kRedirectionTable + 2 * pin, vector | (trigger == Trigger::kLevel ? kLevelTriggered : 0));
    return true;
}

void mask(uint32_t pin) {
    if (pin >= ioapic.pins) return;
    IrqSpinLockGuard guard(ioapic.lock);
    write_locked(kRedirectionTable + 2 * pin, kMasked);
}

}  // namespace hvkvm::guest::ioapic
