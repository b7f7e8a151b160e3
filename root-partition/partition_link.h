// What the root partition's VMBus host and its VSPs need of the VMM, as an interface: the
// process's link implements it (root_partition.cpp), tests can fake it.
#pragma once

#include <cstdint>
#include <span>

#include "kvm/unique_fd.h"
#include "link/link_messages.h"

namespace hvkvm::root {

class PartitionLink {
public:
    // A host message into (vp, sint)'s SynIC slot (queued by the VMM while the slot is busy).
    virtual void post_message(uint32_t vp, uint32_t sint, uint32_t message_type, std::span<const uint8_t> payload) = 0;
    // The eventfd the guest's SignalEvent on `connection_id` increments (no exit). Throws
    // vmm::HostError if the VMM refuses.
    virtual vmm::UniqueFd open_event_connection(uint32_t connection_id) = 0;
    // For the VMM's reports and for naming the channel a dead root partition was serving.
    virtual void report_channel(uint32_t relid, link::ChannelPhase phase, uint32_t target_vp, const char* name) = 0;

protected:
    ~PartitionLink() = default;
};

}  // namespace hvkvm::root
