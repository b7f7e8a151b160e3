// One channel of storvsp (the primary or a sub-channel): its rings and the requests in flight on
// it. Each packet is copied out of the ring once (payload and page list), decided by the
// protocol session and the SCSI target, and kept in a request slot until its answer is in the
// outgoing ring:
//
//   free -> in flight (host I/O running) -> finished (answer ready) -> written -> free
//
// Serving a channel (a guest signal, or completions of its I/O):
//   1. write finished answers;  2. take new packets while slots and io_uring room last;
//   3. submit the batch's I/O (one system call);  4. write the answers that are ready;
//   5. publish once, signal the guest at most once;
//   6. sleep with the guest's signals armed only when nothing is in flight: while I/O runs, its
//      completions bring the channel back, so a busy channel costs the guest no signal per request.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <vector>

#include "poll_window.h"
#include "services/storvsp/storvsp_protocol.h"
#include "storage/scsi/scsi_target.h"
#include "vsp.h"

namespace hvkvm::root {

class Storvsp;

struct ChannelCounters {
    uint64_t requests = 0;          // packets taken from the ring
    uint64_t answers = 0;           // completions written
    uint64_t srbs = 0;              // EXECUTE_SRB packets
    uint64_t io_srbs = 0;           // ... that ran host I/O
    uint64_t services = 0;          // serve() runs (guest signals and completion batches)
    uint64_t publishes = 0;         // outgoing publishes that made answers visible
    uint64_t guest_signals = 0;     // signals sent to the guest
    uint64_t dropped = 0;           // packets without "completion requested"
    uint64_t bad_page_lists = 0;    // SRB buffers naming a page outside guest RAM
    uint64_t misaligned = 0;        // SRB buffers O_DIRECT cannot use (not 512-byte aligned)
    uint64_t oversized_page_lists = 0;  // page lists larger than any valid transfer needs
    uint64_t ring_full = 0;         // answers that waited for the guest to make room
    uint64_t slots_exhausted = 0;   // times every slot was busy and packets waited in the ring
    uint64_t engine_full = 0;       // times the shared io_uring had no room and packets waited
    uint64_t poll_hits = 0;         // idle drains whose poll window found the guest's next request
    uint64_t poll_misses = 0;       // ... that ended empty (then the window backs off)
    uint64_t poll_skipped = 0;      // ... that looked once (backing off, or no window)
    uint32_t max_in_flight = 0;
};

class StorvspChannel final : public Vsp {
public:
    static constexpr uint32_t kSlots = 256;

    StorvspChannel(VspServices& services, Storvsp& controller, uint16_t index, std::chrono::nanoseconds poll_window);
    ~StorvspChannel() override;

    const char* name() const override { return index_ == 0 ? "storvsp" : "storvsp-sub"; }
    vmbus::channel::OfferInfo offer() const override;
    bool control(const nlohmann::json& request, ControlReply& reply) override;

    uint16_t index() const { return index_; }
    uint32_t in_flight() const { return in_flight_; }
    // Packets wait in the ring for room in the shared io_uring.
    bool waiting_for_engine() const { return waiting_for_engine_; }
    const ChannelCounters& counters() const { return counters_; }

    // Operation `op` of the request in `slot` ended with `result` (-errno or bytes).
    void io_done(uint16_t slot, uint8_t op, uint32_t generation, int32_t result);
    void serve();

private:
    struct Slot {
        enum class State : uint8_t { kFree, kInFlight, kFinished };
        State state = State::kFree;
        uint32_t generation = 0;  // the channel's open generation when the request came
        storvsp::Decision decision;
        storage::scsi::Execution execution;
        uint32_t lun = 0;
        uint32_t ops_pending = 0;
        storage::scsi::BlockIoResult io;
        std::vector<iovec> segments;
    };

    bool on_open(const vmbus::channel::OpenRequest& request) override;
    void on_close() override;
    void on_guest_signal() override { serve(); }

    // Returns true when the incoming ring's space should be signalled to the guest.
    bool accept_requests();
    bool take_packet(const vmbus::ring::IncomingPacket& packet);
    void execute_srb(uint16_t slot_index);
    void start_block_io(uint16_t slot_index);
    void complete_scsi(Slot& slot, const storage::scsi::Completion& completion, bool target_exists);
    void finish(uint16_t slot_index);
    void release_slot(uint16_t slot_index);
    // Writes finished answers until the ring is full (publish() makes them visible).
    void send_finished();

    Storvsp& controller_;
    const uint16_t index_;
    uint32_t generation_ = 0;
    std::vector<Slot> slots_;
    std::vector<uint16_t> free_slots_;
    std::deque<uint16_t> finished_;
    uint32_t in_flight_ = 0;          // slots whose host I/O runs
    bool waiting_for_engine_ = false;
    std::vector<uint64_t> range_words_;      // a packet's page list (sized for kMaxTransferBytes)
    std::vector<uint64_t> oversized_words_;  // allocated on the first larger page list
    ChannelCounters counters_;
    PollWindow poll_;
};

}  // namespace hvkvm::root
