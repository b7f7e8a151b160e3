// The bus-master engine's view of a PRD table (abi/ata.h PrdEntry): read from guest RAM one entry
// at a time, each entry copied once and then checked, into the list of host buffers the transfer
// moves data through. A hostile table cannot make this loop or allocate without bound: it reads
// at most to the table's 64 KiB boundary (kPrdTableMaxEntries entries), and every buffer must be
// guest RAM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace hvkvm::devices::ide {

// Guest RAM as DMA reaches it.
class DmaMemory {
public:
    virtual ~DmaMemory() = default;
    // Appends the host views of [gpa, gpa + length), split where guest RAM regions meet (NUMA
    // nodes are adjacent regions); false, with `out` unchanged, unless every byte is RAM.
    virtual bool append_ram(uint64_t gpa, uint64_t length, std::vector<std::span<std::byte>>& out) const = 0;
};

enum class PrdProblem {
    kNone,
    kTableNotAligned,    // the table address is not dword aligned
    kTableOutsideRam,    // an entry before the end of the table is not RAM
    kNoEndOfTable,       // no entry up to the 64 KiB boundary has the end-of-table flag
    kBufferOutsideRam,   // a buffer is not (wholly) RAM
    kLengthMismatch,     // the buffers do not add up to the command's sector count
};
std::string_view describe(PrdProblem problem);

struct PrdBuffers {
    PrdProblem problem = PrdProblem::kNone;
    uint32_t entries = 0;                      // entries read (up to and including the failing one)
    std::vector<std::span<std::byte>> buffers;  // in table order; empty unless problem is kNone
};

// Reads the table at `table_gpa` for a transfer of exactly `transfer_bytes`. As on PIIX, bit 0
// of each address and byte count is ignored and a byte count of 0 means 64 KiB.
PrdBuffers read_prd_table(const DmaMemory& memory, uint64_t table_gpa, uint64_t transfer_bytes);

}  // namespace hvkvm::devices::ide
