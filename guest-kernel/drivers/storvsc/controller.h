// storvsc's inside, shared by its two halves: controller.cpp (initialization, sub-channels, the
// LUN scan, probe and remove, the list of controllers) and data_path.cpp (block commands as SRBs,
// reaping completions, raw requests). Users see storvsc.h.
#pragma once

#include <stdint.h>

#include "block/driver.h"
#include "drivers/storvsc/request_table.h"
#include "drivers/storvsc/scsi_commands.h"
#include "drivers/storvsc/storvsc.h"
#include "kernel/sched/mutex.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::storvsc {

namespace ring = vmbus::ring;
using ring::RingError;

// Slots per channel: a queue of kQueueDepth per LUN, and one for the raw (control) request.
inline constexpr uint32_t kRawSlot = kMaxLuns * kQueueDepth;
inline constexpr uint32_t kSlotsPerLane = kRawSlot + 1;
// A 1 MiB buffer that starts inside a page touches 257 pages.
inline constexpr uint32_t kMaxPfns = kMaxTransferBytes / vmbus::kHvPageSize + 1;
// The send ring holds every slot's largest packet at once (descriptor, range header and PFNs,
// the 64-byte vstor packet, trailer: ~2.2 KiB), so a send never finds it full; the receive ring
// every slot's completion (~88 bytes).
inline constexpr uint32_t kSendRingPages = 128;
inline constexpr uint32_t kReceiveRingPages = 8;
static_assert(uint64_t{kSendRingPages} * vmbus::kHvPageSize > uint64_t{kSlotsPerLane} * (48 + 8 * kMaxPfns + wire::kPacketSize + 8));

inline void bump(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }
inline uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// One request in flight: a block command, or a raw request whose waiter polls.
struct InFlight {
    block::Command* command = nullptr;
    RawRequest* raw = nullptr;
    uint32_t expected_bytes = 0;
};
using Requests = RequestTable<InFlight, kSlotsPerLane>;

// What a lane counts itself (unknown completions: the table; host signals: the channel).
struct LaneCounters {
    uint64_t requests;
    uint64_t completions;
    uint64_t unsolicited;
    uint64_t interrupts;
    uint64_t interrupt_cpu_mismatches;
    uint64_t send_failures;
    uint64_t late_packets;  // found after a release: published while the reaper was finishing
};

class Controller;

// One VMBus channel (the primary or a sub-channel) and the requests in flight on it: a block
// device's hardware queue `index` is this lane for every LUN.
struct Lane {
    Controller* controller = nullptr;
    vmbus::Device* device = nullptr;
    uint32_t index = 0;
    uint32_t target_cpu = 0;
    SpinLock use_lock;  // guards `channel` against its removal (with interrupts off)
    vmbus::Channel* channel = nullptr;
    Requests requests;
    uint64_t* pfns = nullptr;  // kMaxPfns per slot
    // One reaper at a time (several LUNs' queues, the interrupt and raw waiters share the lane).
    bool reaping = false;
    bool reap_again = false;
    SpinLock mask_lock;  // guards pollers
    uint32_t pollers = 0;
    bool raw_done = false;
    LaneCounters counters{};

    uint32_t reap();
    uint32_t drain(vmbus::Channel& open);
    void handle(vmbus::Channel& open, const ring::IncomingPacket& packet);
    void set_polled(bool polled);
    // Never waits: the send ring holds every slot's packet, so a full ring is a failure (counted).
    RingError send(uint64_t id, const vmbus::GpaRange* range, const void* payload, uint32_t size);
};

struct Lun final : block::Driver {
    Controller* controller = nullptr;
    uint32_t index = 0;
    char name[12] = {};  // "sd" and a number
    LunInfo info{};

    void start(block::Command& command) override;
    uint32_t reap(uint32_t queue) override;
    void set_completion_interrupts(uint32_t queue, bool enabled) override;
};

class Controller {
public:
    explicit Controller(vmbus::Device& primary) : primary_(primary) {}

    bool initialize();
    bool open_lane(vmbus::Device& device, uint32_t index);
    void lane_removed(Lane& lane);
    bool takes_sub_channel(const vmbus::Device& device) const;
    const vmbus::Bus& bus() const { return primary_.bus(); }
    bool all_lanes_open() const { return lane_count_ == expected_lanes_; }
    void register_disks();
    // Setting up ends once: disks registered, or the controller failed or went away.
    void finish_setting_up();
    void log_error(const Lun& lun, const block::Command& command, const scsi_commands::Outcome& outcome);

    RawResult execute_raw(uint32_t lane, RawRequest& request, uint64_t timeout_ns);
    Lane* lane(uint32_t index) const { return index < kMaxChannels ? lanes_[index] : nullptr; }
    bool gone() const { return __atomic_load_n(&gone_, __ATOMIC_ACQUIRE); }
    bool ready() const { return __atomic_load_n(&ready_, __ATOMIC_ACQUIRE); }
    const Lun* lun_at(uint32_t index) const { return index < lun_count_ ? &luns_[index] : nullptr; }
    ControllerInfo describe() const {
        return {version_, properties_.max_transfer_bytes, properties_.max_channel_count, lane_count_, lun_count_, ready()};
    }

private:
    bool control(wire::Operation operation, const void* body, uint32_t body_size, wire::Packet& answer);
    bool negotiate_version();
    bool scsi(uint8_t lun, const uint8_t* cdb, uint8_t cdb_length, void* buffer, uint32_t bytes, uint32_t needed,
              uint32_t* moved = nullptr);
    bool find_luns(uint8_t* buffer);
    bool describe_lun(uint8_t lun, uint8_t* buffer);
    void ask_for_sub_channels();

    vmbus::Device& primary_;
    Lane* lanes_[kMaxChannels] = {};
    uint32_t lane_count_ = 0;       // open
    uint32_t expected_lanes_ = 1;   // the primary and the sub-channels the host agreed to
    Lun luns_[kMaxLuns];
    uint32_t lun_count_ = 0;
    uint16_t version_ = 0;
    wire::ChannelProperties properties_{};
    uint32_t max_transfer_ = 0;     // what the block devices get
    bool ready_ = false;
    bool gone_ = false;
    bool setting_up_ = true;        // counted in the registry's setting_up (under its lock)
    Mutex raw_lock_;                // one raw request at a time
    SpinLock log_lock_;             // guards the three below
    uint64_t log_window_ns_ = 0;
    uint32_t logged_in_window_ = 0;
    uint64_t suppressed_ = 0;
};

// A channel's interrupt (ChannelOptions::interrupt_handler, interrupt context): the block layer
// reaps the lane's queue.
void lane_interrupt(void* context);

}  // namespace hvkvm::guest::storvsc
