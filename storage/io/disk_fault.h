// A deterministic host I/O fault on one disk, for tests (config `debug.disk_fault`, docs/config.md):
// the nth operation of one kind on that disk, and the count - 1 after it, fail the way a failing
// host would (EIO, ENOSPC) or move only part of their data (a short read or write). Plain data:
// the VMM's config, the link to the root partition and the root's injector share it.
#pragma once

#include <cstdint>

namespace hvkvm::storage {

enum class FaultOperation : uint32_t { kNone = 0, kRead = 1, kWrite = 2, kFlush = 3, kUnmap = 4 };
enum class FaultEffect : uint32_t { kEio = 1, kEnospc = 2, kShortTransfer = 3 };

struct DiskFault {
    FaultOperation operation = FaultOperation::kNone;
    FaultEffect effect = FaultEffect::kEio;
    uint64_t nth = 1;    // 1: the first operation of that kind fails
    uint32_t count = 1;  // consecutive operations that fail
    uint32_t reserved = 0;

    bool armed() const { return operation != FaultOperation::kNone; }
};
static_assert(sizeof(DiskFault) == 24);

}  // namespace hvkvm::storage
