// A VMBus host inside the guest, for testing the guest's VMBus driver against a host whose every
// move a test controls (rescind now, refuse versions, stall the device): the library's own
// ChannelServer with echo VSPs, behind the HostLink interface a Bus talks through.
//
//   guest -> host messages  post_message() hands them to the server at once (under the host's
//                           lock); its replies go into the bus's inbound queue, as SINT 2 messages
//   guest -> host signals   signal_event() wakes the VSP of that event connection
//   host -> guest signals   the VSP interrupts the channel's target CPU: a cross-CPU call, so the
//                           bus sees it in interrupt context on that CPU, as a SINT 2 event flag
//
// What this does not exercise: the SynIC and the hypercalls (tests/synic_tests.cpp and the tests
// against the root partition do).
#pragma once

#include <stdint.h>

#include "drivers/vmbus/bus.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "vmbus/channel/channel_server.h"
#include "vmbus/ring/ring_memory.h"

namespace hvkvm::guest::test {

namespace protocol = ::hvkvm::vmbus::protocol;
namespace vmbus_ring = ::hvkvm::vmbus::ring;
namespace vmbus_channel = ::hvkvm::vmbus::channel;

struct TestHostOptions {
    uint32_t max_version = protocol::kSupportedVersions[0];  // newer requests are answered "not supported"
    bool has_vmbus = true;                                    // false: the message connection does not exist
    uint64_t vsp_poll_ns = 100'000;                           // the echo VSP polls this long before sleeping
    uint32_t vsp_cpu = sched::kAnyCpu;                        // pin the VSP threads to this CPU
};

struct VspStats {
    uint64_t requests;           // echoed
    uint64_t guest_signals;      // the guest's HvSignalEvent equivalents
    uint64_t interrupts_raised;  // host -> guest signals the ring rules asked for
    uint64_t full_waits;         // completions that found the guest's ring full
};

// A host-side device inside the guest, driven by its own thread while open: it maps the channel's
// rings, drains the guest's packets and hands each to serve(), and interrupts the guest the way
// the ring rules say. EchoVsp answers with the request's bytes; a test may serve another protocol
// (storvsc's tests play storvsp).
class LoopbackVsp : public vmbus_channel::ChannelDevice {
public:
    LoopbackVsp(vmbus::Bus*& bus, const TestHostOptions& options) : bus_(bus), options_(options) {}
    virtual ~LoopbackVsp() { close(); }

    uint32_t open(const vmbus_channel::OpenRequest& request) override;
    void close() override;

    void signal() { wake_.signal(); }  // the guest signalled the channel's event connection
    // While paused the VSP consumes nothing (a test fills the guest -> host ring).
    void set_paused(bool paused);
    bool is_open() const { return __atomic_load_n(&thread_, __ATOMIC_ACQUIRE) != nullptr; }
    uint32_t relid() const { return relid_; }
    uint32_t target_vp() const { return target_vp_; }
    // The guest -> host ring's pending_send_size as the host sees it.
    uint32_t upstream_pending_send_size() const;
    VspStats stats() const;

protected:
    static constexpr uint32_t kMaxRangeWords = 512;  // a GPA-direct packet's range words the VSP reads

    // One packet from the guest (GPA-direct ranges validated in packet.ranges); false stops the VSP.
    virtual bool serve(const vmbus_ring::IncomingPacket& packet) = 0;
    // Writes a completion, waiting (the ring rules' way) while the guest's ring is full; publishes
    // and interrupts the guest if it must. False if the VSP is stopping or the ring is broken.
    bool complete(uint64_t transaction_id, const void* payload, uint32_t size);
    void interrupt_guest();
    vmbus_ring::RingReader& reader() { return reader_; }
    bool stopping() const { return __atomic_load_n(&stopping_, __ATOMIC_ACQUIRE); }

private:
    static void thread_entry(void* self);
    void run();
    void sleep_until_signalled();

    vmbus::Bus*& bus_;  // the host's: null while detached
    const TestHostOptions& options_;
    uint32_t relid_ = 0;
    uint32_t target_vp_ = 0;
    uint8_t** pages_ = nullptr;  // the ring GPADL's pages (identity-mapped)
    vmbus_ring::PagedRingMemory* upstream_ = nullptr;
    vmbus_ring::PagedRingMemory* downstream_ = nullptr;
    vmbus_ring::RingReader reader_;
    vmbus_ring::RingWriter writer_;
    uint64_t* range_words_ = nullptr;  // kMaxRangeWords
    Semaphore wake_;
    bool stopping_ = false;
    bool paused_ = false;
    sched::Thread* thread_ = nullptr;
    VspStats stats_ = {};
};

// The echo device (the host's VSP for services::echo).
class EchoVsp final : public LoopbackVsp {
public:
    EchoVsp(vmbus::Bus*& bus, const TestHostOptions& options) : LoopbackVsp(bus, options) {}
    ~EchoVsp() override;

private:
    bool serve(const vmbus_ring::IncomingPacket& packet) override;
    uint8_t* payload_ = nullptr;  // services::echo::kMaxPayload
};

class TestHost final : public vmbus::HostLink, private vmbus_channel::ServerTransport, private vmbus_channel::GpadlStorage {
public:
    static constexpr uint32_t kMaxOffers = 8;

    explicit TestHost(const TestHostOptions& options = {});
    ~TestHost();

    // HostLink
    abi::hv::Status post_message(uint32_t connection_id, const void* bytes, uint32_t size) override;
    abi::hv::Status signal_event(uint32_t connection_id) override;
    bool attach(vmbus::Bus& bus) override;
    void detach() override;

    // Offers one more echo device (instance data1 = `instance`); returns its index or -1.
    int add_echo_offer(uint32_t instance);
    // Offers a device served by `vsp` (owned from now on, deleted even if refused); index or -1.
    int add_offer(const protocol::Guid& interface_type, const protocol::Guid& instance, LoopbackVsp* vsp);
    // Offers a device of an interface no guest driver serves.
    bool add_foreign_offer(uint32_t instance);
    bool rescind(int echo_index);
    LoopbackVsp& vsp(int echo_index) { return *vsps_[echo_index]; }
    uint32_t relid_of(int echo_index);

    uint32_t versions_refused() const { return versions_refused_; }
    uint32_t server_gpadl_count();
    bool server_is_open(int echo_index);
    vmbus_channel::ServerCounters server_counters();
    // The range words of the GPADL the server assembled last, as it stored them.
    const uint64_t* last_gpadl_words(uint32_t& count) const {
        count = last_gpadl_count_;
        return last_gpadl_;
    }

private:
    // ServerTransport: the server's messages to the guest.
    void send(const protocol::MessageBuffer& message) override;
    // GpadlStorage
    uint64_t* allocate(uint32_t words) override;
    void release(uint64_t* words, uint32_t count) override;

    bool refuse_newer_version(const void* bytes, uint32_t size);

    TestHostOptions options_;
    Mutex lock_;  // guards server_ and the offers
    vmbus_channel::ChannelServer* server_ = nullptr;
    vmbus::Bus* bus_ = nullptr;
    LoopbackVsp* vsps_[kMaxOffers] = {};
    vmbus_channel::OfferId offer_ids_[kMaxOffers] = {};
    uint32_t offer_count_ = 0;
    uint32_t versions_refused_ = 0;
    uint64_t* last_gpadl_ = nullptr;
    uint32_t last_gpadl_count_ = 0;
};

}  // namespace hvkvm::guest::test
