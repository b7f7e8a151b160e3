// Exact decoding of a PIO exit. KVM's exit record (kvm_run.io) gives the port, the element size,
// the direction and how many elements sit in the data area, but not whether the instruction was a
// string one: `rep outsl` reaches user space one element per exit, looking exactly like a plain
// `outl`. Only the instruction bytes tell them apart, and it matters wherever the VMM answers in
// registers: KVM finishes a string instruction after the exit from the registers it holds, so a
// register write there restarts or corrupts it. Pure functions of the exit record and of bytes
// copied from guest memory: unit-tested and fuzzed (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace hvkvm::vmm {

enum class PioDirection : uint8_t { kIn, kOut };

// One KVM_EXIT_IO, validated: size 1, 2 or 4; count >= 1; the data area inside the vCPU's run
// mapping.
struct PioExit {
    uint16_t port;
    uint8_t size;
    PioDirection direction;
    uint32_t count;            // elements in `data` (1 for a plain IN/OUT; string I/O may batch INs)
    std::span<uint8_t> data;   // count * size bytes; OUT: the guest's data, IN: to be filled

    bool is_single(PioDirection wanted_direction, uint8_t wanted_size) const {
        return direction == wanted_direction && size == wanted_size && count == 1;
    }
};

// Reads the exit record from the start of `run_area` (the vCPU's whole kvm_run mapping, which
// holds the data too). nullopt if the record is malformed: KVM never produces one, so the caller
// treats it as a host error.
std::optional<PioExit> decode_pio_exit(std::span<uint8_t> run_area);

// An I/O instruction as decoded from its bytes (64-bit mode).
struct PioInstruction {
    bool string;                            // INS/OUTS
    bool repeated;                          // REP (F3) or REPNE (F2) prefix
    PioDirection direction;
    uint8_t size;                           // 1, 2 or 4 bytes per element
    std::optional<uint8_t> immediate_port;  // IN/OUT imm8; nullopt: the port is DX
    uint8_t length;                         // bytes, prefixes included
};

inline constexpr size_t kMaxInstructionLength = 15;

// Decodes the instruction at the start of `bytes` (fewer than 15 bytes is fine if the instruction
// fits). nullopt if it is not a valid I/O instruction: another opcode, LOCK, too many prefixes, or
// cut short.
std::optional<PioInstruction> decode_pio_instruction(std::span<const uint8_t> bytes);

// Whether `instruction` can have produced `exit`: same direction and element size, same port
// (`dx` for the register forms), one element unless it is a string instruction. False means the
// bytes read back are not what the vCPU executed (the guest changed them since the exit).
bool explains(const PioInstruction& instruction, const PioExit& exit, uint16_t dx);

}  // namespace hvkvm::vmm
