// The VMM's own count of exits it handled, by reason ("io uart16550", "mmio unclaimed", ...).
// One instance per vCPU, touched only by that vCPU's thread; merged after the threads join.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace hvkvm::vmm {

class ExitCounters {
public:
    void count(const std::string& reason) { ++counts_[reason]; }
    void merge(const ExitCounters& other) {
        for (const auto& [reason, count] : other.counts_) counts_[reason] += count;
    }
    const std::map<std::string, uint64_t>& counts() const { return counts_; }

private:
    std::map<std::string, uint64_t> counts_;
};

}  // namespace hvkvm::vmm
