// Host -> guest channel interrupts without the VMM: set the channel's flag (its relid) in the
// target VP's SINT 2 event-flag array, found through the SynIC state page the VMM shares, then
// write that VP's SINT 2 eventfd (an irqfd). The SINT is raised only when the flag was clear,
// as the VMM's own SynIC does.
#pragma once

#include <cstdint>
#include <vector>

#include "kvm/guest_memory.h"
#include "kvm/unique_fd.h"
#include "synic/synic_shared_state.h"

namespace hvkvm::root {

class GuestSignals {
public:
    GuestSignals(const vmm::GuestMemory& memory, const vmm::SynicSharedState& synic, std::vector<vmm::UniqueFd> sint_fds)
        : memory_(memory), synic_(synic), sint_fds_(std::move(sint_fds)) {}

    // False when the VP's SynIC or event page is off (nothing to signal), or the VP does not exist.
    bool signal(uint32_t vp, uint32_t flag);

    uint64_t signals() const { return signals_; }
    uint64_t interrupts() const { return interrupts_; }

private:
    const vmm::GuestMemory& memory_;
    const vmm::SynicSharedState& synic_;
    std::vector<vmm::UniqueFd> sint_fds_;  // SINT 2 of each VP
    uint64_t signals_ = 0;
    uint64_t interrupts_ = 0;
};

}  // namespace hvkvm::root
