#include "prd_table.h"

#include <cstring>

#include "hvkvm/abi/align.h"
#include "hvkvm/abi/ata.h"

namespace hvkvm::devices::ide {
namespace ata = abi::ata;

std::string_view describe(PrdProblem problem) {
    switch (problem) {
    case PrdProblem::kNone: return "none";
    case PrdProblem::kTableNotAligned: return "PRD table address not dword aligned";
    case PrdProblem::kTableOutsideRam: return "PRD table outside guest RAM";
    case PrdProblem::kNoEndOfTable: return "no end-of-table entry before the table's 64 KiB boundary";
    case PrdProblem::kBufferOutsideRam: return "PRD buffer outside guest RAM";
    case PrdProblem::kLengthMismatch: return "PRD byte count differs from the command's sector count";
    }
    return "?";
}

namespace {

// The entry copied out of guest RAM (once), or false if it is not RAM.
bool copy_entry(const DmaMemory& memory, uint64_t gpa, ata::PrdEntry& entry) {
    std::vector<std::span<std::byte>> views;
    if (!memory.append_ram(gpa, sizeof entry, views)) return false;
    auto* destination = reinterpret_cast<std::byte*>(&entry);
    for (const auto& view : views) {
        std::memcpy(destination, view.data(), view.size());
        destination += view.size();
    }
    return true;
}

PrdBuffers failed(PrdProblem problem, uint32_t entries) {
    PrdBuffers result;
    result.problem = problem;
    result.entries = entries;
    return result;
}

}  // namespace

PrdBuffers read_prd_table(const DmaMemory& memory, uint64_t table_gpa, uint64_t transfer_bytes) {
    if (!abi::is_aligned(table_gpa, 4)) return failed(PrdProblem::kTableNotAligned, 0);
    const uint64_t boundary = abi::align_down(table_gpa, ata::kPrdTableBoundary) + ata::kPrdTableBoundary;
    const uint64_t max_entries = (boundary - table_gpa) / sizeof(ata::PrdEntry);
    PrdBuffers result;
    uint64_t total = 0;
    for (uint32_t index = 0; index < max_entries; ++index) {
        ata::PrdEntry entry{};
        if (!copy_entry(memory, table_gpa + uint64_t{index} * sizeof entry, entry))
            return failed(PrdProblem::kTableOutsideRam, index + 1);
        const uint64_t base = entry.base & ~1u;
        const uint64_t bytes = entry.byte_count == 0 ? ata::kPrdMaxBytes : (entry.byte_count & ~1u);
        // Checked before it is added, so a table of thousands of large entries stops at the first
        // byte past the transfer instead of building a list the transfer will never use.
        total += bytes;
        if (total > transfer_bytes) return failed(PrdProblem::kLengthMismatch, index + 1);
        if (!memory.append_ram(base, bytes, result.buffers)) return failed(PrdProblem::kBufferOutsideRam, index + 1);
        if (entry.flags & ata::kPrdEndOfTable) {
            if (total != transfer_bytes) return failed(PrdProblem::kLengthMismatch, index + 1);
            result.entries = index + 1;
            return result;
        }
    }
    return failed(PrdProblem::kNoEndOfTable, static_cast<uint32_t>(max_entries));
}

}  // namespace hvkvm::devices::ide
