// Counts one disk's operations by kind and says which ones a DiskFault makes fail. Not thread-safe
// (one per disk, used by the thread that issues its I/O).
#pragma once

#include <cstdint>

#include "storage/io/disk_fault.h"

namespace hvkvm::storage {

class FaultInjector {
public:
    FaultInjector() = default;
    explicit FaultInjector(const DiskFault& fault) : fault_(fault) {}

    // Call once per operation, in issue order: the effect to apply, or nothing (false).
    bool next(FaultOperation operation, FaultEffect& effect) {
        if (!fault_.armed() || operation == FaultOperation::kNone) return false;
        const uint64_t seen = ++seen_[static_cast<uint32_t>(operation)];
        if (operation != fault_.operation || seen < fault_.nth || seen - fault_.nth >= fault_.count) return false;
        effect = fault_.effect;
        ++injected_;
        return true;
    }
    uint64_t injected() const { return injected_; }
    const DiskFault& fault() const { return fault_; }

private:
    DiskFault fault_;
    uint64_t seen_[5] = {};
    uint64_t injected_ = 0;
};

}  // namespace hvkvm::storage
