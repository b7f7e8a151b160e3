#include "tests/vmbus_test_host.h"

#include <new>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "kernel/sync/cross_call.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "vmbus/services/echo.h"

namespace hvkvm::guest::test {

using abi::hv::Status;
namespace echo_service = ::hvkvm::vmbus::services::echo;

namespace {

void bump(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }
uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// A device of an interface no guest driver serves.
constexpr protocol::Guid kForeignInterface = {0x0badc0de, 0x1234, 0x5678, {1, 2, 3, 4, 5, 6, 7, 8}};

}  // namespace

// --- A VSP in the guest -------------------------------------------------------------------------

uint32_t LoopbackVsp::open(const vmbus_channel::OpenRequest& request) {
    close();
    const vmbus_channel::RingGpadl& ring = request.ring;
    relid_ = request.child_relid;
    target_vp_ = request.target_vp;
    pages_ = new (std::nothrow) uint8_t*[ring.page_count];
    range_words_ = static_cast<uint64_t*>(mm::allocate(kMaxRangeWords * sizeof(uint64_t)));
    if (!pages_ || !range_words_) {
        close();
        return protocol::kStatusUnsuccessful;
    }
    // Guest memory is identity-mapped; the server checked the layout (each ring >= 2 pages).
    for (uint32_t i = 0; i < ring.page_count; ++i) pages_[i] = reinterpret_cast<uint8_t*>(ring.pfns[i] * vmbus::kHvPageSize);
    const uint32_t split = ring.downstream_page_offset;
    upstream_ = new (std::nothrow) vmbus_ring::PagedRingMemory(reinterpret_cast<vmbus_ring::ControlPage*>(pages_[0]),
                                                              pages_ + 1, split - 1);
    downstream_ = new (std::nothrow) vmbus_ring::PagedRingMemory(
        reinterpret_cast<vmbus_ring::ControlPage*>(pages_[split]), pages_ + split + 1, ring.page_count - split - 1);
    if (!upstream_ || !downstream_ || reader_.attach(*upstream_) != vmbus_ring::RingError::kOk ||
        writer_.attach(*downstream_) != vmbus_ring::RingError::kOk) {
        close();
        return protocol::kStatusUnsuccessful;
    }
    __atomic_store_n(&stopping_, false, __ATOMIC_RELAXED);
    sched::ThreadOptions thread_options;
    thread_options.name = "loopback-vsp";
    if (options_.vsp_cpu != sched::kAnyCpu) {
        thread_options.affinity = 1ull << options_.vsp_cpu;
        thread_options.ideal_cpu = options_.vsp_cpu;
    }
    thread_ = sched::create_thread(thread_entry, this, thread_options);
    return thread_ ? protocol::kStatusSuccess : protocol::kStatusUnsuccessful;
}

void LoopbackVsp::close() {
    if (thread_) {
        __atomic_store_n(&stopping_, true, __ATOMIC_RELEASE);
        wake_.signal();
        sched::join(thread_);
        thread_ = nullptr;
    }
    delete upstream_;
    delete downstream_;
    upstream_ = downstream_ = nullptr;
    delete[] pages_;
    pages_ = nullptr;
    mm::free(range_words_);
    range_words_ = nullptr;
}

void LoopbackVsp::set_paused(bool paused) {
    __atomic_store_n(&paused_, paused, __ATOMIC_RELEASE);
    wake_.signal();
}

uint32_t LoopbackVsp::upstream_pending_send_size() const {
    return upstream_ ? __atomic_load_n(&upstream_->control()->pending_send_size, __ATOMIC_RELAXED) : 0;
}

VspStats LoopbackVsp::stats() const {
    return {load(stats_.requests), load(stats_.guest_signals), load(stats_.interrupts_raised), load(stats_.full_waits)};
}

void LoopbackVsp::thread_entry(void* self) { static_cast<LoopbackVsp*>(self)->run(); }

void LoopbackVsp::sleep_until_signalled() {
    wake_.wait();
    bump(stats_.guest_signals);
}

// A SINT 2 event flag on the channel's target CPU: the bus sees it there, in interrupt context.
void LoopbackVsp::interrupt_guest() {
    bump(stats_.interrupts_raised);
    vmbus::Bus* bus = __atomic_load_n(&bus_, __ATOMIC_ACQUIRE);
    if (!bus) return;
    struct Call {
        vmbus::Bus* bus;
        uint32_t relid;
    } call{bus, relid_};
    const auto deliver = [](void* argument) {
        auto* target = static_cast<Call*>(argument);
        target->bus->channel_interrupt(target->relid);
    };
    if (smp::online_mask() & (1ull << target_vp_)) smp::run_on_cpu(target_vp_, deliver, &call);
    else deliver(&call);
}

// A full guest ring is waited out the way the ring rules say: write() declared the space needed,
// and the guest signals once its release crosses it.
bool LoopbackVsp::complete(uint64_t transaction_id, const void* payload, uint32_t size) {
    for (;;) {
        const vmbus_ring::RingError error = writer_.write_completion(transaction_id, payload, size);
        if (error == vmbus_ring::RingError::kOk) break;
        if (error != vmbus_ring::RingError::kFull) return false;
        bump(stats_.full_waits);
        if (reader_.release()) interrupt_guest();  // the guest may be waiting for room too
        sleep_until_signalled();
        if (stopping()) return false;
    }
    if (writer_.publish()) interrupt_guest();
    return true;
}

EchoVsp::~EchoVsp() {
    close();  // the thread is gone before the payload buffer
    mm::free(payload_);
}

// Answers one request with its own bytes.
bool EchoVsp::serve(const vmbus_ring::IncomingPacket& packet) {
    if (packet.type != vmbus_ring::PacketType::kInBand || !packet.completion_requested() ||
        packet.payload_size > echo_service::kMaxPayload) {
        return true;  // nothing to answer
    }
    if (!payload_) payload_ = static_cast<uint8_t*>(mm::allocate(echo_service::kMaxPayload));
    if (!payload_) return false;
    reader().copy_payload(packet, 0, payload_, packet.payload_size);
    return complete(packet.transaction_id, payload_, packet.payload_size);
}

void LoopbackVsp::run() {
    while (!__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&paused_, __ATOMIC_ACQUIRE)) {
            sleep_until_signalled();
            continue;
        }
        reader_.mask_signals();
        vmbus_ring::IncomingPacket packet;
        vmbus_ring::RingError error;
        while ((error = reader_.next(packet, {range_words_, kMaxRangeWords})) == vmbus_ring::RingError::kOk) {
            bump(stats_.requests);
            if (!serve(packet)) return;
        }
        if (error != vmbus_ring::RingError::kEmpty) {
            kprint("loopback-vsp: relid %u: the guest's ring is corrupt (%s): stopped\n", relid_,
                   vmbus_ring::ring_error_name(error));
            while (!__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) wake_.wait();
            return;
        }
        if (reader_.release()) interrupt_guest();
        // Busy: poll a while before asking the guest for signals again.
        const uint64_t poll_until = time::now_ns() + options_.vsp_poll_ns;
        bool more = false;
        while (!more && time::now_ns() < poll_until) {
            more = reader_.has_data();
            x86::pause();
        }
        if (more || reader_.arm_signal()) continue;
        sleep_until_signalled();
    }
}

// --- The host ------------------------------------------------------------------------------------------

TestHost::TestHost(const TestHostOptions& options) : options_(options) {
    server_ = new (std::nothrow) vmbus_channel::ChannelServer(*this, *this);
}

TestHost::~TestHost() {
    for (LoopbackVsp* vsp : vsps_) {
        if (vsp) vsp->close();
    }
    delete server_;
    for (LoopbackVsp* vsp : vsps_) delete vsp;
}

bool TestHost::attach(vmbus::Bus& bus) {
    if (!server_) return false;
    __atomic_store_n(&bus_, &bus, __ATOMIC_RELEASE);
    return true;
}

void TestHost::detach() { __atomic_store_n(&bus_, static_cast<vmbus::Bus*>(nullptr), __ATOMIC_RELEASE); }

void TestHost::send(const protocol::MessageBuffer& message) {
    if (vmbus::Bus* bus = __atomic_load_n(&bus_, __ATOMIC_ACQUIRE)) bus->deliver_message(message.bytes, message.size);
}

uint64_t* TestHost::allocate(uint32_t words) {
    last_gpadl_ = static_cast<uint64_t*>(mm::allocate(words * sizeof(uint64_t)));
    last_gpadl_count_ = last_gpadl_ ? words : 0;
    return last_gpadl_;
}

void TestHost::release(uint64_t* words, uint32_t) {
    if (words == last_gpadl_) last_gpadl_ = nullptr, last_gpadl_count_ = 0;
    mm::free(words);
}

// A host older than the guest: INITIATE_CONTACT for a version above max_version is answered
// "not supported", and the guest must come back with the next older one.
bool TestHost::refuse_newer_version(const void* bytes, uint32_t size) {
    protocol::GuestMessage message;
    if (protocol::parse_guest_message(bytes, size, message) != protocol::ParseError::kNone ||
        message.type != protocol::MessageType::kInitiateContact ||
        message.initiate_contact.version_requested <= options_.max_version) {
        return false;
    }
    ++versions_refused_;
    protocol::VersionResponse response{};
    response.version_supported = 0;
    send(protocol::encode(response));
    return true;
}

Status TestHost::post_message(uint32_t connection_id, const void* bytes, uint32_t size) {
    if (!options_.has_vmbus) return Status::kInvalidConnectionId;
    if (connection_id != protocol::kMessageConnectionId4 && connection_id != protocol::kMessageConnectionId)
        return Status::kInvalidConnectionId;
    if (size > protocol::kMaxMessageSize) return Status::kInvalidParameter;
    MutexGuard guard(lock_);
    // The server's refusals are counted in its counters; the post itself succeeded.
    if (!refuse_newer_version(bytes, size)) server_->handle_message(bytes, size);
    return Status::kSuccess;
}

// Each VSP knows its relid from the open; the offers array only grows, under the lock.
Status TestHost::signal_event(uint32_t connection_id) {
    const vmbus_channel::ServerConfig config;
    const uint32_t count = __atomic_load_n(&offer_count_, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < count; ++i) {
        LoopbackVsp* vsp = vsps_[i];
        if (vsp->is_open() && config.event_connection_id_base + vsp->relid() == connection_id) {
            vsp->signal();
            return Status::kSuccess;
        }
    }
    return Status::kInvalidConnectionId;
}

int TestHost::add_echo_offer(uint32_t instance) {
    protocol::Guid guid = echo_service::kInstance;
    guid.data1 = instance;
    return add_offer(echo_service::kInterfaceType, guid, new (std::nothrow) EchoVsp(bus_, options_));
}

int TestHost::add_offer(const protocol::Guid& interface_type, const protocol::Guid& instance, LoopbackVsp* vsp) {
    if (!vsp) return -1;
    MutexGuard guard(lock_);
    if (offer_count_ == kMaxOffers) {
        delete vsp;
        return -1;
    }
    vmbus_channel::OfferInfo info;
    info.interface_type = interface_type;
    info.interface_instance = instance;
    if (server_->add_offer(info, *vsp, offer_ids_[offer_count_]) != vmbus_channel::ServerError::kNone) {
        delete vsp;
        return -1;
    }
    vsps_[offer_count_] = vsp;
    __atomic_store_n(&offer_count_, offer_count_ + 1, __ATOMIC_RELEASE);
    return static_cast<int>(offer_count_ - 1);
}

bool TestHost::add_foreign_offer(uint32_t instance) {
    // A device that is never opened: the guest has no driver for it.
    static struct : vmbus_channel::ChannelDevice {
        uint32_t open(const vmbus_channel::OpenRequest&) override { return protocol::kStatusUnsuccessful; }
        void close() override {}
    } never_opened;
    MutexGuard guard(lock_);
    vmbus_channel::OfferInfo info;
    info.interface_type = kForeignInterface;
    info.interface_instance.data1 = instance;
    vmbus_channel::OfferId id;
    return server_->add_offer(info, never_opened, id) == vmbus_channel::ServerError::kNone;
}

bool TestHost::rescind(int echo_index) {
    MutexGuard guard(lock_);
    return server_->rescind(offer_ids_[echo_index]) == vmbus_channel::ServerError::kNone;
}

uint32_t TestHost::relid_of(int echo_index) {
    MutexGuard guard(lock_);
    return server_->relid_of(offer_ids_[echo_index]);
}

uint32_t TestHost::server_gpadl_count() {
    MutexGuard guard(lock_);
    return server_->gpadl_count();
}

bool TestHost::server_is_open(int echo_index) {
    MutexGuard guard(lock_);
    return server_->is_open(offer_ids_[echo_index]);
}

vmbus_channel::ServerCounters TestHost::server_counters() {
    MutexGuard guard(lock_);
    return server_->counters();
}

}  // namespace hvkvm::guest::test
