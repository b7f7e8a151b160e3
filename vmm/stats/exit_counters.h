// The VMM's own count of exits it handled, by reason ("uart16550" under "pio", "mmio unclaimed",
// ...). One instance per vCPU, touched only by that vCPU's thread; merged after the threads join.
// Counting allocates only the first time a reason is seen: exits are the VMM's hot path.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace hvkvm::vmm {

class ExitCounters {
public:
    void count(std::string_view reason) { bump(counts_, reason); }
    // PIO exits claimed by a device, by device name (names live as long as their devices).
    void count_pio(std::string_view device) { bump(pio_counts_, device); }

    void merge(const ExitCounters& other) {
        for (const auto& [reason, count] : other.counts_) counts_[reason] += count;
        for (const auto& [device, count] : other.pio_counts_) pio_counts_[device] += count;
    }
    // All counts, PIO ones labelled "pio <device>".
    std::map<std::string, uint64_t> counts() const {
        std::map<std::string, uint64_t> all(counts_.begin(), counts_.end());
        for (const auto& [device, count] : pio_counts_) all["pio " + device] += count;
        return all;
    }

private:
    using Counts = std::map<std::string, uint64_t, std::less<>>;
    static void bump(Counts& counts, std::string_view key) {
        auto it = counts.find(key);  // heterogeneous lookup: no string built for a known key
        if (it == counts.end()) it = counts.emplace(std::string(key), 0).first;
        ++it->second;
    }

    Counts counts_;
    Counts pio_counts_;
};

}  // namespace hvkvm::vmm
