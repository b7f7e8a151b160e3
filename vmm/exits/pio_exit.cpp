#include "exits/pio_exit.h"

#include <linux/kvm.h>

#include <cstring>

namespace hvkvm::vmm {
namespace {

using IoRecord = decltype(kvm_run::io);

bool is_element_size(uint8_t size) { return size == 1 || size == 2 || size == 4; }

// Legacy prefixes that may precede an I/O instruction without changing what it does to the port.
bool is_neutral_prefix(uint8_t byte) {
    switch (byte) {
    case 0x67:                                              // address size (string forms: 32-bit RSI/RDI)
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:  // segment overrides
        return true;
    default: return false;
    }
}

bool is_rex(uint8_t byte) { return (byte & 0xf0) == 0x40; }

}  // namespace

std::optional<PioExit> decode_pio_exit(std::span<uint8_t> run_area) {
    if (run_area.size() < sizeof(kvm_run)) return std::nullopt;
    uint32_t exit_reason;
    IoRecord io;
    std::memcpy(&exit_reason, run_area.data() + offsetof(kvm_run, exit_reason), sizeof exit_reason);
    std::memcpy(&io, run_area.data() + offsetof(kvm_run, io), sizeof io);
    if (exit_reason != KVM_EXIT_IO || !is_element_size(io.size) || io.count == 0) return std::nullopt;
    if (io.direction != KVM_EXIT_IO_IN && io.direction != KVM_EXIT_IO_OUT) return std::nullopt;
    const uint64_t bytes = uint64_t{io.count} * io.size;
    if (io.data_offset > run_area.size() || bytes > run_area.size() - io.data_offset) return std::nullopt;
    return PioExit{io.port, io.size, io.direction == KVM_EXIT_IO_OUT ? PioDirection::kOut : PioDirection::kIn,
                   io.count, run_area.subspan(io.data_offset, bytes)};
}

std::optional<PioInstruction> decode_pio_instruction(std::span<const uint8_t> bytes) {
    bool operand_16 = false, repeated = false, rex_w = false;
    size_t at = 0;
    for (; at < bytes.size() && at < kMaxInstructionLength; ++at) {
        const uint8_t byte = bytes[at];
        if (byte == 0xf0) return std::nullopt;  // LOCK: #UD, never an exit
        if (is_rex(byte)) {
            rex_w = byte & 0x08;
            continue;
        }
        if (byte == 0x66) operand_16 = true;
        else if (byte == 0xf2 || byte == 0xf3) repeated = true;
        else if (!is_neutral_prefix(byte)) break;  // the opcode
        rex_w = false;  // a REX counts only right before the opcode
    }
    if (at >= bytes.size() || at >= kMaxInstructionLength) return std::nullopt;

    const uint8_t opcode = bytes[at];
    // In/out of a word or doubleword: 16 bits with an operand-size prefix (REX.W overrides it, and
    // port I/O has no 64-bit form).
    const uint8_t wide = operand_16 && !rex_w ? 2 : 4;
    PioInstruction instruction{};
    switch (opcode) {
    case 0xe4: case 0xe5: case 0xe6: case 0xe7: {  // IN/OUT with an 8-bit immediate port
        if (at + 1 >= bytes.size() || at + 2 > kMaxInstructionLength) return std::nullopt;
        instruction.direction = opcode & 0x02 ? PioDirection::kOut : PioDirection::kIn;
        instruction.size = opcode & 0x01 ? wide : 1;
        instruction.immediate_port = bytes[at + 1];
        instruction.length = static_cast<uint8_t>(at + 2);
        return instruction;
    }
    case 0xec: case 0xed: case 0xee: case 0xef:  // IN/OUT with the port in DX
        instruction.direction = opcode & 0x02 ? PioDirection::kOut : PioDirection::kIn;
        instruction.size = opcode & 0x01 ? wide : 1;
        instruction.length = static_cast<uint8_t>(at + 1);
        return instruction;
    case 0x6c: case 0x6d: case 0x6e: case 0x6f:  // INS/OUTS, port in DX
        instruction.string = true;
        instruction.repeated = repeated;
        instruction.direction = opcode & 0x02 ? PioDirection::kOut : PioDirection::kIn;
        instruction.size = opcode & 0x01 ? wide : 1;
        instruction.length = static_cast<uint8_t>(at + 1);
        return instruction;
    default: return std::nullopt;
    }
}

bool explains(const PioInstruction& instruction, const PioExit& exit, uint16_t dx) {
    const uint16_t port = instruction.immediate_port ? *instruction.immediate_port : dx;
    return instruction.direction == exit.direction && instruction.size == exit.size && port == exit.port &&
           (instruction.string || exit.count == 1);
}

}  // namespace hvkvm::vmm
