// One VMBus connection from the guest to a host: the guest's VMBus driver (Linux drivers/hv
// vmbus_drv.c, connection.c, channel_mgmt.c), built on the library's ChannelClient state machine.
//
//   start()  INITIATE_CONTACT, newest version first (the client falls back one version per
//            refusal), REQUESTOFFERS, and waits for ALLOFFERS_DELIVERED; offers become devices,
//            which registered VSC drivers probe (driver_model.h).
//   GPADLs   create_gpadl() describes pages to the host (header + as many bodies as needed) and
//            waits for GPADL_CREATED; teardown_gpadl() waits for GPADL_TORNDOWN.
//   channels Channel (channel.h) opens a channel on these: both rings in one GPADL, OPENCHANNEL on
//            a chosen target CPU; channel interrupts arrive here and go to the open channel.
//   stop()   removes every device, then UNLOAD and waits for UNLOAD_RESPONSE.
//
// Threads: the host's messages are copied, in interrupt context, into a bounded inbound queue and
// handed to the client by the bus's message thread; requests come from any thread. The client is
// used under one lock; its events only record results and wake the requester waiting for them, so
// nothing waits for the host while holding it. Every wait for the host is bounded by the reply
// timeout.
#pragma once

#include <stdint.h>

#include "drivers/vmbus/driver_model.h"
#include "drivers/vmbus/host_link.h"
#include "drivers/vmbus/library.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/spinlock.h"
#include "lib/intrusive_list.h"

namespace hvkvm::guest::vmbus {

class Channel;

enum class BusError : uint8_t {
    kNone,
    kNoHost,       // the host has no VMBus message connection
    kPostFailed,   // a message could not be posted (the host's buffers stayed full, or it refused)
    kRefused,      // the host answered with a failure: no common version, a GPADL or open status
    kTimeout,      // no answer within the reply timeout
    kRescinded,    // the channel was rescinded meanwhile
    kBadRequest,   // not connected, or the request does not fit the channel's state
    kBadArgument,  // e.g. a GPADL too large to describe
    kNoMemory,
};
const char* bus_error_name(BusError error);

struct BusOptions {
    uint32_t max_version = protocol::kSupportedVersions[0];
    uint32_t message_cpu = 0;  // the VP whose SINT 2 slot receives the host's messages
    uint64_t reply_timeout_ns = 10'000'000'000;
};

struct BusStats {
    uint64_t messages_received;   // host messages handed to the bus
    uint64_t messages_refused;    // ... that the channel client refused (hostile or out of place)
    uint64_t messages_dropped;    // ... that found the inbound queue full (should never happen)
    uint64_t messages_posted;
    uint64_t post_retries;        // HvPostMessage said "insufficient buffers" and was retried
    uint64_t channel_interrupts;
    uint64_t stray_interrupts;    // a channel interrupt for a relid with no open channel
    uint64_t rescinds;            // offers the host withdrew
};

class Bus final : private client::ClientTransport, private client::ClientEvents {
public:
    explicit Bus(HostLink& link);
    ~Bus();  // stops first if running
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    BusError start(const BusOptions& options = {});
    void stop();
    bool is_running() const { return running_; }
    uint32_t version() const { return version_; }
    uint32_t message_connection_id();
    const BusOptions& options() const { return options_; }

    // From the host link, in interrupt context or any thread.
    void deliver_message(const void* bytes, uint32_t size);
    void channel_interrupt(uint32_t relid);

    DriverModel& drivers() { return drivers_; }

    // GPADLs for a device's channel. `pfns` name whole pages; one range covers them all.
    BusError create_gpadl(const Device& device, const uint64_t* pfns, uint32_t page_count, uint32_t& gpadl);
    BusError teardown_gpadl(const Device& device, uint32_t gpadl);

    // For Channel: OPENCHANNEL and its result, CLOSECHANNEL (no answer), and where the channel's
    // interrupts go while it is open.
    BusError open_channel(const Device& device, uint32_t gpadl, uint32_t downstream_page_offset, uint32_t target_cpu,
                          const uint8_t* user_data);
    BusError close_channel(const Device& device);
    void route_interrupts(uint32_t relid, Channel* channel);
    // After a rescind: lets the host reuse the relid. For the driver model.
    void release_relid(uint32_t relid);
    abi::hv::Status signal_host(uint32_t connection_id) { return link_.signal_event(connection_id); }

    BusStats stats() const;

private:
    static constexpr uint32_t kInboundCapacity = 128;  // more than the host sends unanswered

    enum class ReplyKind : uint8_t { kConnect, kOffers, kGpadlCreated, kGpadlTornDown, kOpenResult, kUnload };
    // A requester waiting for the host's answer; lives on the requester's stack.
    struct PendingReply {
        ReplyKind kind;
        uint32_t key;    // GPADL id, or relid for kOpenResult
        uint32_t relid;  // the channel it concerns (0: none), failed on rescind
        uint32_t status = 0;
        bool rescinded = false;
        Event done;
        ListNode link;
    };

    // ClientTransport, ClientEvents (called under client_lock_).
    void send(uint32_t connection_id, const protocol::MessageBuffer& message) override;
    void connected(uint32_t version) override;
    void connection_failed() override;
    void offer(const protocol::OfferChannel& offer) override;
    void all_offers_delivered() override;
    void gpadl_created(uint32_t gpadl, uint32_t status) override;
    void gpadl_torn_down(uint32_t gpadl) override;
    void open_result(uint32_t relid, uint32_t status) override;
    void rescinded(uint32_t relid) override;
    void unloaded() override;

    static void message_thread_entry(void* self);
    void message_loop();
    bool pop_inbound(protocol::MessageBuffer& message);

    BusError connect();
    BusError unload();
    void stop_threads();

    void expect_reply(PendingReply& reply, ReplyKind kind, uint32_t key, uint32_t relid);
    void forget_reply(PendingReply& reply);
    void complete_reply(ReplyKind kind, uint32_t key, uint32_t status);
    void fail_replies_of(uint32_t relid);
    BusError wait_reply(PendingReply& reply);
    BusError client_error(client::ClientError error) const;

    HostLink& link_;
    BusOptions options_;
    DriverModel drivers_;
    bool running_ = false;
    uint32_t version_ = 0;

    Mutex client_lock_;  // guards client_ and last_post_status_
    client::ChannelClient* client_ = nullptr;
    abi::hv::Status last_post_status_ = abi::hv::Status::kSuccess;

    SpinLock inbound_lock_;  // guards the inbound queue (taken in interrupt context)
    protocol::MessageBuffer* inbound_ = nullptr;
    uint32_t inbound_head_ = 0;
    uint32_t inbound_count_ = 0;
    Semaphore inbound_ready_;
    bool stopping_ = false;
    sched::Thread* message_thread_ = nullptr;

    SpinLock replies_lock_;  // guards replies_ (taken with interrupts disabled)
    IntrusiveList<PendingReply, &PendingReply::link> replies_;

    Channel* routes_[client::kMaxRelid + 1] = {};  // read in interrupt context (acquire)
    BusStats stats_ = {};                          // updated atomically
};

}  // namespace hvkvm::guest::vmbus
