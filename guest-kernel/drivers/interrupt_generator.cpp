#include "drivers/interrupt_generator.h"

#include "arch/x86_64/cpu.h"
#include "hvkvm/abi/devices.h"

namespace hvkvm::guest::interrupt_generator {
namespace {

using abi::InterruptGeneratorCommand;

uint32_t in(uint16_t offset) { return x86::inl(static_cast<uint16_t>(abi::kInterruptGeneratorPort + offset)); }
void out(uint16_t offset, uint32_t value) { x86::outl(static_cast<uint16_t>(abi::kInterruptGeneratorPort + offset), value); }

void command(InterruptGeneratorCommand kind, uint32_t count) {
    out(abi::kInterruptGeneratorCommand, static_cast<uint32_t>(kind) | (count << 8));
}

}  // namespace

bool present() { return in(abi::kInterruptGeneratorRaised) != 0xffffffffu; }

void raise_edges(uint32_t count) { command(InterruptGeneratorCommand::kEdge, count); }

void raise_msis(uint32_t destination_apic_id, uint8_t vector, uint32_t count) {
    out(abi::kInterruptGeneratorMsiTarget, (destination_apic_id & 0xff) | (uint32_t{vector} << 8));
    command(InterruptGeneratorCommand::kMsi, count);
}

void assert_level() { command(InterruptGeneratorCommand::kLevelAssert, 0); }
void deassert_level() { command(InterruptGeneratorCommand::kLevelDeassert, 0); }

uint32_t raised() { return in(abi::kInterruptGeneratorRaised); }
uint32_t resamples() { return in(abi::kInterruptGeneratorResamples); }

}  // namespace hvkvm::guest::interrupt_generator
