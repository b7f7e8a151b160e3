// Reader for KVM's binary statistics (KVM_GET_STATS_FD): the only exit counters available on
// hosts where debugfs is locked down. Reads the descriptor table once, then values on demand.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

struct KvmStat {
    std::string name;
    uint64_t value;
};

class KvmStats {
public:
    explicit KvmStats(UniqueFd fd);

    // Current values of the scalar cumulative counters (exits, io_exits, halt_exits, ...).
    std::vector<KvmStat> read_counters() const;

private:
    struct Descriptor {
        std::string name;
        uint32_t offset_in_values;  // in uint64_t units
    };
    UniqueFd fd_;
    uint64_t data_offset_ = 0;
    size_t value_count_ = 0;
    std::vector<Descriptor> counters_;
};

// Adds `from` into `into`, matching by name (for summing vCPUs).
void accumulate(std::vector<KvmStat>& into, const std::vector<KvmStat>& from);

}  // namespace hvkvm::vmm
