// Port and register layouts of the small emulated devices the guest kernel drives directly
// (besides the 16550 UART and the debug device in boot.h). Compiled by the VMM and the guest.
#pragma once

#include <stdint.h>

namespace hvkvm::abi {

// ---------------------------------------------------------------------------------------------
// POST code port: the guest writes one byte per boot phase (BootPhase), as a PC BIOS does at port
// 0x80, so that the VMM can say how far a guest that hangs or is stopped had come. One PIO exit
// each. Not 0x80 itself: PVM hosts let converted vCPUs write the I/O-delay port 0x80 without an
// exit (measured: of the 8 boot-phase writes only the one before conversion reached the VMM).
// ---------------------------------------------------------------------------------------------
inline constexpr uint16_t kPostCodePort = 0x00f0;

// ---------------------------------------------------------------------------------------------
// Interrupt generator: a test device (config `debug.interrupt_generator`) through which in-guest
// tests make the VMM raise interrupts on each host->guest path it offers devices: an edge and a
// level-triggered IOAPIC line (irqfd, the level one with a resample fd) and MSIs. The interrupts
// are raised by the device's worker thread, never by the vCPU thread that wrote the command.
// ---------------------------------------------------------------------------------------------
inline constexpr uint16_t kInterruptGeneratorPort = 0x0510;
inline constexpr uint16_t kInterruptGeneratorPortCount = 16;
inline constexpr uint32_t kInterruptGeneratorEdgePin = 20;   // IOAPIC input pins (GSIs)
inline constexpr uint32_t kInterruptGeneratorLevelPin = 21;
inline constexpr uint32_t kInterruptGeneratorMaxBurst = 1024;

enum InterruptGeneratorRegister : uint16_t {
    // 32-bit write: kind (InterruptGeneratorCommand) in bits 7:0, count in bits 31:8
    // (1..kInterruptGeneratorMaxBurst; only for edge and MSI, ignored otherwise).
    kInterruptGeneratorCommand = 0,
    // 32-bit write: the MSI target: destination APIC id in bits 7:0, vector in bits 15:8.
    kInterruptGeneratorMsiTarget = 4,
    // 32-bit read: interrupts the device has raised (edge and MSI triggers, level assertions
    // including re-assertions after a resample).
    kInterruptGeneratorRaised = 8,
    // 32-bit read: resamples of the level line seen while it was asserted (guest EOIs).
    kInterruptGeneratorResamples = 12,
};

enum class InterruptGeneratorCommand : uint8_t {
    kEdge = 1,         // `count` edges on kInterruptGeneratorEdgePin
    kLevelAssert = 2,  // assert kInterruptGeneratorLevelPin until kLevelDeassert
    kLevelDeassert = 3,
    kMsi = 4,          // `count` MSIs to the last kInterruptGeneratorMsiTarget
};

// ---------------------------------------------------------------------------------------------
// IDE controller (present when the config has a disk with bus "ide"): the primary channel at the
// PC's legacy ports and IRQ, master and slave. Register layouts are in ata.h. There is no PCI, so
// the PIIX-style bus-master block (BMIBA in a PIIX's PCI config space) sits at a fixed port;
// only the primary channel's 8 ports exist (the secondary's would follow at +8).
// ---------------------------------------------------------------------------------------------
inline constexpr uint16_t kIdeCommandBlockPort = 0x01f0;  // 8 ports: data .. status/command
inline constexpr uint16_t kIdeControlBlockPort = 0x03f6;  // alternate status / device control
inline constexpr uint16_t kIdeBusMasterPort = 0xc000;     // 8 ports: ata.h BusMasterRegister
inline constexpr uint32_t kIdeInterruptPin = 14;          // IOAPIC input (ISA IRQ 14), edge
inline constexpr uint32_t kIdeDevicesPerChannel = 2;      // master (0) and slave (1)

static_assert(kIdeCommandBlockPort + 8 <= kIdeControlBlockPort, "command and control blocks are apart");
static_assert(kIdeBusMasterPort % 16 == 0, "PIIX bus-master blocks are 16-byte aligned");
static_assert(kIdeBusMasterPort > kInterruptGeneratorPort + kInterruptGeneratorPortCount);
static_assert(kIdeInterruptPin != kInterruptGeneratorEdgePin && kIdeInterruptPin != kInterruptGeneratorLevelPin);

}  // namespace hvkvm::abi
