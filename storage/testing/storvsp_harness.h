// storvsp without a VM, for tests and the benchmark: the root partition's VMBus host and storvsp,
// exactly as hvkvm-root runs them (event loop, guest signals through SynIC event-flag pages and
// per-VP eventfds, one io_uring), served on their own thread; and a fake guest on the caller's
// thread that speaks VMBus through ChannelClient and storvsc's protocol over rings in a shared
// guest-RAM memfd. Only the VMM (link, SynIC messages) and the sandbox are left out: host messages
// go straight to the guest, guest messages through a socket as in hvkvm-root.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "event_loop.h"
#include "guest_signals.h"
#include "kvm/guest_memory.h"
#include "kvm/unique_fd.h"
#include "partition_link.h"
#include "services/storvsp/storvsp.h"
#include "storage/io/io_engine.h"
#include "synic/synic_shared_state.h"
#include "vmbus/channel/channel_client.h"
#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"
#include "vmbus/services/storage.h"
#include "vmbus_host.h"

namespace hvkvm::storage::testing {

namespace wire = vmbus::services::storage;

struct DiskSpec {
    std::string id;
    std::string path;       // an existing image file
    bool read_only = false;
    bool direct = true;     // O_DIRECT (cache "none")
    DiskFault fault;
};

struct HarnessOptions {
    uint32_t vcpus = 2;
    uint64_t ram_mib = 64;
    std::vector<DiskSpec> disks;
    uint32_t io_depth = 256;  // the io_uring's submission entries (2x that may be in flight)
    // storvsp's idle poll window (vmbus.poll_window_us); none by default, so that the tests see
    // every signal the protocol asks for.
    std::chrono::nanoseconds poll_window{0};
};

// --- The host side ------------------------------------------------------------------------------

class StorvspHost final : public root::PartitionLink {
public:
    explicit StorvspHost(const HarnessOptions& options);
    ~StorvspHost();
    StorvspHost(const StorvspHost&) = delete;
    StorvspHost& operator=(const StorvspHost&) = delete;

    const vmm::GuestMemory& memory() const { return memory_; }
    uint32_t vcpus() const { return vcpus_; }
    // The guest's side of the plumbing.
    int guest_message_socket() const { return guest_messages_guest_end_.get(); }
    int host_message_event() const { return host_messages_event_.get(); }
    // Host -> guest channel messages, in order (taken by the guest).
    std::optional<std::vector<uint8_t>> take_host_message();
    // The eventfd the guest writes to signal `connection_id` (its HvSignalEvent), or -1.
    int signal_event(uint32_t connection_id) const;
    // The eventfd of VP `vp`'s SINT 2 (the guest waits on it) and its event-flag array.
    int sint_event(uint32_t vp) const { return sint_events_guest_[vp].get(); }
    uint64_t* event_flags(uint32_t vp) const;
    uint64_t scratch_gpa() const { return scratch_gpa_; }  // guest RAM past the host's pages

    // Runs `work` on the host's event-loop thread and waits for it (the host's objects are not
    // thread-safe: read counters and reports this way).
    void on_host(const std::function<void()>& work);
    root::Storvsp& storvsp() { return *storvsp_; }
    root::VmbusHost& vmbus() { return *host_; }
    nlohmann::json report();

    // PartitionLink: what hvkvm-root asks of the VMM, answered here (called on the loop thread).
    void post_message(uint32_t vp, uint32_t sint, uint32_t message_type, std::span<const uint8_t> payload) override;
    vmm::UniqueFd open_event_connection(uint32_t connection_id) override;
    void report_channel(uint32_t, root::link::ChannelPhase, uint32_t, const char*) override {}

private:
    void on_guest_message_readable();
    void run_posted_work();

    uint32_t vcpus_;
    vmm::GuestMemory memory_;
    vmm::SynicSharedState synic_{};
    uint64_t scratch_gpa_ = 0;
    std::vector<vmm::UniqueFd> sint_events_guest_;
    vmm::UniqueFd guest_messages_guest_end_, guest_messages_host_end_;
    vmm::UniqueFd host_messages_event_;
    vmm::UniqueFd work_event_, stop_event_;

    mutable std::mutex mutex_;  // guards the three members below (shared with the guest thread)
    std::deque<std::vector<uint8_t>> host_messages_;
    std::map<uint32_t, vmm::UniqueFd> signal_events_;  // the guest's ends
    std::deque<std::function<void()>> work_;

    root::EventLoop loop_;
    std::unique_ptr<root::GuestSignals> signals_;
    std::unique_ptr<root::VspServices> services_;
    std::vector<root::StorvspDisk> disks_;
    std::unique_ptr<IoEngine> engine_;
    std::unique_ptr<root::Storvsp> storvsp_;
    std::unique_ptr<root::VmbusHost> host_;
    std::thread thread_;
};

// --- The guest side -----------------------------------------------------------------------------

// One GPA range of a GPA-direct packet.
struct RangeSpec {
    uint32_t byte_offset = 0;
    uint32_t byte_count = 0;
    std::vector<uint64_t> pfns;
};

// A packet the guest sends on a channel: in-band, or GPA-direct when it has ranges.
struct GuestPacket {
    wire::Packet packet{};
    uint32_t payload_size = wire::kPacketSize;
    bool completion_requested = true;
    std::vector<RangeSpec> ranges;
};

struct Answer {
    uint64_t transaction_id = 0;
    wire::Packet packet{};
    uint32_t size = 0;
    bool completion = false;  // a completion packet (else in-band: unsolicited)
};

// One open channel, the guest's end.
struct GuestChannel {
    uint32_t relid = 0;
    uint16_t sub_channel_index = 0;
    uint32_t target_vp = 0;
    uint32_t connection_id = 0;
    uint64_t ring_gpa = 0;
    uint32_t ring_pages = 0;
    std::unique_ptr<vmbus::ring::ContiguousRingMemory> outgoing_memory, incoming_memory;
    vmbus::ring::RingWriter outgoing;
    vmbus::ring::RingReader incoming;
    uint64_t signals_sent = 0;      // guest -> host signals
};

class FakeStorvsc final : private vmbus::channel::ClientTransport, private vmbus::channel::ClientEvents {
public:
    explicit FakeStorvsc(StorvspHost& host);

    // VMBus: connect and collect offers (returns the storvsp primary's relid, or 0).
    uint32_t connect();
    // Opens a channel with rings of `ring_pages` pages per direction (control page included; the
    // host -> guest ring `answer_ring_pages` if given), interrupts on `target_vp`.
    GuestChannel& open(uint32_t relid, uint32_t target_vp, uint32_t ring_pages = 32, uint32_t answer_ring_pages = 0);
    void close(GuestChannel& channel);
    // After a rescind: RELID_RELEASED.
    void release(uint32_t relid) { client_.release(relid); }
    // Offers that arrived (sub-channels included), by relid.
    const std::vector<uint32_t>& offers() const { return offer_relids_; }
    const vmbus::protocol::OfferChannel* offer(uint32_t relid) const { return client_.offer(relid); }
    std::vector<uint32_t> rescinds() const { return rescinds_; }
    // Host channel messages that arrived since the last call are handled (offers, rescinds...).
    void poll_messages();

    // storvsc: BEGIN, QUERY_PROTOCOL_VERSION (each of `versions` until one is accepted),
    // QUERY_PROPERTIES, END. Returns the properties; throws on any failure.
    wire::ChannelProperties initialize(GuestChannel& primary, std::vector<uint16_t> versions = {wire::kVersionWin10});
    // CREATE_SUB_CHANNELS; returns the status. On success the new offers are in offers().
    uint32_t create_sub_channels(GuestChannel& primary, uint16_t count);

    // Sends and waits for the answer to `transaction_id` (other answers are kept for later).
    Answer call(GuestChannel& channel, const GuestPacket& packet, uint64_t transaction_id);
    // Sends without waiting; returns false if the ring has no room. With `publish` false the packet
    // stays invisible to the host until publish(): a batch costs one index store and one signal.
    bool send(GuestChannel& channel, const GuestPacket& packet, uint64_t transaction_id, bool publish = true);
    void publish(GuestChannel& channel);
    // Answers available now on the channel (non-blocking), appended to `answers`.
    uint32_t collect(GuestChannel& channel, std::vector<Answer>& answers);
    // Waits until the channel's VP is signalled or `timeout_ms` passes; false on timeout.
    bool wait_for_signal(GuestChannel& channel, int timeout_ms);

    // Guest memory for data buffers: `pages` contiguous pages; returns the GPA.
    uint64_t allocate(uint32_t pages);
    uint8_t* host(uint64_t gpa) const;

    // An EXECUTE_SRB packet. `data_gpa`/`length` name the buffer (length 0: none).
    static GuestPacket srb(const std::vector<uint8_t>& cdb, uint8_t data_in, uint64_t data_gpa, uint32_t length,
                           uint8_t lun = 0, uint8_t path = 0, uint8_t target = 0);
    static GuestPacket operation(wire::Operation operation, const void* body = nullptr, uint32_t body_size = 0);

    StorvspHost& host() { return host_; }

private:
    void send(uint32_t connection_id, const vmbus::protocol::MessageBuffer& message) override;
    void offer(const vmbus::protocol::OfferChannel& offer) override;
    void rescinded(uint32_t relid) override { rescinds_.push_back(relid); }
    void gpadl_created(uint32_t gpadl, uint32_t status) override { gpadls_[gpadl] = status; }
    void gpadl_torn_down(uint32_t gpadl) override { torn_down_.push_back(gpadl); }
    void open_result(uint32_t relid, uint32_t status) override { open_results_[relid] = status; }
    void connected(uint32_t) override { connected_ = true; }
    void all_offers_delivered() override { offers_done_ = true; }

    void wait_for_message(const std::function<bool()>& done);
    void signal_host(GuestChannel& channel);

    StorvspHost& host_;
    vmbus::channel::ChannelClient client_;
    bool connected_ = false, offers_done_ = false;
    std::vector<uint32_t> offer_relids_, rescinds_;
    std::map<uint32_t, uint32_t> gpadls_, open_results_;
    std::vector<uint32_t> torn_down_;
    std::map<uint32_t, uint32_t> ring_gpadls_;  // relid -> GPADL id
    std::vector<std::unique_ptr<GuestChannel>> channels_;
    std::map<uint64_t, Answer> early_answers_;
    uint64_t next_free_gpa_;
};

}  // namespace hvkvm::storage::testing
