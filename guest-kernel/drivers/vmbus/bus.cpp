#include "drivers/vmbus/bus.h"

#include <new>

#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/time.h"
#include "drivers/vmbus/channel.h"
#include "kernel/console.h"
#include "kernel/sync/cross_call.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::vmbus {
namespace {

using abi::hv::Status;

// HvPostMessage answers "insufficient buffers" while the host's receive queue is full: retry,
// backing off, for this long before giving up on the message.
constexpr uint64_t kPostRetryLimitNs = 1'000'000'000;
constexpr uint64_t kPostFirstBackoffNs = 20'000;
constexpr uint64_t kPostMaxBackoffNs = 10'000'000;
constexpr uint32_t kStatusFailed = 1;  // a connect or offer wait that ended without success
// Refused host messages are counted; the first few are also printed.
constexpr uint64_t kRefusalsPrinted = 8;

void bump(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }
uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// Every CPU has left any interrupt handler it was in (and any section with interrupts disabled):
// a cross-CPU call is served only with interrupts enabled.
void wait_for_interrupt_handlers() {
    const uint64_t online = smp::online_mask();
    for (uint32_t cpu = 0; cpu < abi::kMaxVcpus; ++cpu)
        if (online & (1ull << cpu)) smp::run_on_cpu(cpu, [](void*) {}, nullptr);
}

}  // namespace

const char* bus_error_name(BusError error) {
    switch (error) {
        case BusError::kNone: return "none";
        case BusError::kNoHost: return "the host offers no VMBus";
        case BusError::kPostFailed: return "a message could not be posted";
        case BusError::kRefused: return "the host refused";
        case BusError::kTimeout: return "no answer from the host";
        case BusError::kRescinded: return "the channel was rescinded";
        case BusError::kBadRequest: return "request does not fit the state";
        case BusError::kBadArgument: return "bad argument";
        case BusError::kNoMemory: return "out of memory";
    }
    return "unknown";
}

Bus::Bus(HostLink& link) : link_(link), drivers_(*this) {}

Bus::~Bus() { stop(); }

// --- Start and stop ------------------------------------------------------------------------------

BusError Bus::start(const BusOptions& options) {
    if (running_) return BusError::kBadRequest;
    options_ = options;
    inbound_ = static_cast<protocol::MessageBuffer*>(mm::allocate(sizeof(protocol::MessageBuffer) * kInboundCapacity));
    client_ = new (std::nothrow) client::ChannelClient(*this, *this, {options.max_version, options.message_cpu});
    if (!inbound_ || !client_) {
        stop_threads();
        return BusError::kNoMemory;
    }
    inbound_head_ = inbound_count_ = 0;
    stopping_ = false;
    sched::ThreadOptions thread_options;
    thread_options.name = "vmbus";
    message_thread_ = sched::create_thread(message_thread_entry, this, thread_options);
    if (!message_thread_ || !drivers_.start()) {
        stop_threads();
        return BusError::kNoMemory;
    }
    if (!link_.attach(*this)) {
        stop_threads();
        return BusError::kNoHost;
    }
    const BusError error = connect();
    if (error != BusError::kNone) {
        link_.detach();
        stop_threads();
        return error;
    }
    running_ = true;
    return BusError::kNone;
}

// INITIATE_CONTACT (the client falls back through older versions itself), then the offers.
BusError Bus::connect() {
    PendingReply contact, offers;
    {
        MutexGuard guard(client_lock_);
        expect_reply(contact, ReplyKind::kConnect, 0, 0);
        expect_reply(offers, ReplyKind::kOffers, 0, 0);
        last_post_status_ = Status::kSuccess;
        const client::ClientError error = client_->connect();
        if (error != client::ClientError::kNone || last_post_status_ != Status::kSuccess) {
            forget_reply(contact);
            forget_reply(offers);
            if (last_post_status_ == Status::kInvalidConnectionId) return BusError::kNoHost;
            return error != client::ClientError::kNone ? client_error(error) : BusError::kPostFailed;
        }
    }
    BusError error = wait_reply(contact);
    if (error == BusError::kNone && contact.status != 0) error = BusError::kRefused;
    if (error == BusError::kNone) error = wait_reply(offers);
    if (error == BusError::kNone && offers.status != 0) error = BusError::kRefused;
    forget_reply(offers);
    if (error != BusError::kNone) return error;
    MutexGuard guard(client_lock_);
    version_ = client_->version();
    return BusError::kNone;
}

void Bus::stop() {
    if (!running_) return;
    drivers_.stop();  // every driver closes its channels the ordinary way first
    const BusError error = unload();
    if (error != BusError::kNone) kprint("vmbus: unload: %s\n", bus_error_name(error));
    link_.detach();
    stop_threads();
    running_ = false;
    version_ = 0;
}

BusError Bus::unload() {
    PendingReply reply;
    {
        MutexGuard guard(client_lock_);
        const client::ClientError error = client_->unload();
        if (error != client::ClientError::kNone) return client_error(error);
        expect_reply(reply, ReplyKind::kUnload, 0, 0);
    }
    return wait_reply(reply);
}

void Bus::stop_threads() {
    drivers_.stop();
    if (message_thread_) {
        __atomic_store_n(&stopping_, true, __ATOMIC_RELEASE);
        inbound_ready_.signal();
        sched::join(message_thread_);
        message_thread_ = nullptr;
    }
    delete client_;
    client_ = nullptr;
    {
        IrqSpinLockGuard guard(inbound_lock_);
        mm::free(inbound_);
        inbound_ = nullptr;
    }
    for (Channel*& route : routes_) __atomic_store_n(&route, nullptr, __ATOMIC_RELEASE);
}

uint32_t Bus::message_connection_id() {
    MutexGuard guard(client_lock_);
    return client_ ? client_->connection_id() : 0;
}

// --- Inbound messages ------------------------------------------------------------------------------

void Bus::deliver_message(const void* bytes, uint32_t size) {
    if (size > protocol::kMaxMessageSize) size = protocol::kMaxMessageSize;  // the parser refuses it
    {
        IrqSpinLockGuard guard(inbound_lock_);
        if (!inbound_ || inbound_count_ == kInboundCapacity) {
            bump(stats_.messages_dropped);
            return;
        }
        protocol::MessageBuffer& slot = inbound_[(inbound_head_ + inbound_count_) % kInboundCapacity];
        memcpy(slot.bytes, bytes, size);
        slot.size = size;
        ++inbound_count_;
    }
    bump(stats_.messages_received);
    inbound_ready_.signal();
}

bool Bus::pop_inbound(protocol::MessageBuffer& message) {
    IrqSpinLockGuard guard(inbound_lock_);
    if (inbound_count_ == 0) return false;
    const protocol::MessageBuffer& slot = inbound_[inbound_head_];
    memcpy(message.bytes, slot.bytes, slot.size);
    message.size = slot.size;
    inbound_head_ = (inbound_head_ + 1) % kInboundCapacity;
    --inbound_count_;
    return true;
}

void Bus::message_thread_entry(void* self) { static_cast<Bus*>(self)->message_loop(); }

void Bus::message_loop() {
    for (;;) {
        inbound_ready_.wait();
        if (__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) return;
        protocol::MessageBuffer message;
        if (!pop_inbound(message)) continue;
        MutexGuard guard(client_lock_);
        const client::ClientError error = client_->handle_message(message.bytes, message.size);
        if (error == client::ClientError::kNone) continue;
        const uint64_t refused = __atomic_fetch_add(&stats_.messages_refused, 1, __ATOMIC_RELAXED);
        if (refused < kRefusalsPrinted) {
            kprint("vmbus: refused a host message (%s%s%s)\n", client::client_error_name(error),
                   error == client::ClientError::kParse ? ": " : "",
                   error == client::ClientError::kParse ? protocol::parse_error_name(client_->last_parse_error()) : "");
        }
    }
}

// --- Outbound messages (ClientTransport) -----------------------------------------------------------

void Bus::send(uint32_t connection_id, const protocol::MessageBuffer& message) {
    const uint64_t give_up = time::now_ns() + kPostRetryLimitNs;
    uint64_t backoff = kPostFirstBackoffNs;
    Status status;
    while ((status = link_.post_message(connection_id, message.bytes, message.size)) == Status::kInsufficientBuffers &&
           time::now_ns() < give_up) {
        bump(stats_.post_retries);
        sched::sleep_ns(backoff);
        backoff = backoff * 2 < kPostMaxBackoffNs ? backoff * 2 : kPostMaxBackoffNs;
    }
    if (status == Status::kSuccess) {
        bump(stats_.messages_posted);
    } else if (last_post_status_ == Status::kSuccess) {
        last_post_status_ = status;  // the first failure is what the requester reports
    }
}

// --- Replies -------------------------------------------------------------------------------------------

// Called under client_lock_ before the reply can be processed (which also takes it).
void Bus::expect_reply(PendingReply& reply, ReplyKind kind, uint32_t key, uint32_t relid) {
    reply.kind = kind;
    reply.key = key;
    reply.relid = relid;
    IrqSpinLockGuard guard(replies_lock_);
    replies_.push_back(reply);
}

void Bus::forget_reply(PendingReply& reply) {
    IrqSpinLockGuard guard(replies_lock_);
    if (reply.link.linked()) replies_.remove(reply);
}

// The requester's stack frame holds `reply`: it is finished with under replies_lock_, which the
// requester also takes before giving up on it.
void Bus::complete_reply(ReplyKind kind, uint32_t key, uint32_t status) {
    IrqSpinLockGuard guard(replies_lock_);
    for (PendingReply* reply = replies_.front(); reply; reply = replies_.next_of(*reply)) {
        if (reply->kind != kind || reply->key != key) continue;
        reply->status = status;
        replies_.remove(*reply);
        reply->done.set();
        return;
    }
}

void Bus::fail_replies_of(uint32_t relid) {
    IrqSpinLockGuard guard(replies_lock_);
    PendingReply* reply = replies_.front();
    while (reply) {
        PendingReply* next = replies_.next_of(*reply);
        // A rescinded channel's GPADL teardown is still answered; its creation and open are not.
        if (reply->relid == relid && (reply->kind == ReplyKind::kGpadlCreated || reply->kind == ReplyKind::kOpenResult)) {
            reply->rescinded = true;
            replies_.remove(*reply);
            reply->done.set();
        }
        reply = next;
    }
}

BusError Bus::wait_reply(PendingReply& reply) {
    if (!reply.done.wait_until(time::now_ns() + options_.reply_timeout_ns)) {
        IrqSpinLockGuard guard(replies_lock_);
        if (reply.link.linked()) {
            replies_.remove(reply);
            return BusError::kTimeout;
        }
    }
    return reply.rescinded ? BusError::kRescinded : BusError::kNone;
}

BusError Bus::client_error(client::ClientError error) const {
    switch (error) {
        case client::ClientError::kNone: return BusError::kNone;
        case client::ClientError::kTableFull: return BusError::kNoMemory;
        case client::ClientError::kBadRanges: return BusError::kBadArgument;
        default: return BusError::kBadRequest;
    }
}

// --- ClientEvents (under client_lock_, from the message thread or a requester) -------------------

void Bus::connected(uint32_t) { complete_reply(ReplyKind::kConnect, 0, 0); }
void Bus::connection_failed() {
    complete_reply(ReplyKind::kConnect, 0, kStatusFailed);
    complete_reply(ReplyKind::kOffers, 0, kStatusFailed);
}
void Bus::offer(const protocol::OfferChannel& offer) { drivers_.offered(offer); }
void Bus::all_offers_delivered() { complete_reply(ReplyKind::kOffers, 0, 0); }
void Bus::gpadl_created(uint32_t gpadl, uint32_t status) { complete_reply(ReplyKind::kGpadlCreated, gpadl, status); }
void Bus::gpadl_torn_down(uint32_t gpadl) { complete_reply(ReplyKind::kGpadlTornDown, gpadl, 0); }
void Bus::open_result(uint32_t relid, uint32_t status) { complete_reply(ReplyKind::kOpenResult, relid, status); }
void Bus::unloaded() { complete_reply(ReplyKind::kUnload, 0, 0); }

void Bus::rescinded(uint32_t relid) {
    bump(stats_.rescinds);
    fail_replies_of(relid);
    {
        // Interrupts off: route_interrupts(relid, nullptr) waits for this like for a handler.
        platform::InterruptsDisabled no_interrupts;
        if (Channel* channel = __atomic_load_n(&routes_[relid], __ATOMIC_ACQUIRE)) channel->on_rescind();
    }
    drivers_.rescinded(relid);
}

// --- GPADLs, open, close ----------------------------------------------------------------------------

BusError Bus::create_gpadl(const Device& device, const uint64_t* pfns, uint32_t page_count, uint32_t& gpadl) {
    // One range: a header word and one PFN per page, at most what range_buflen can announce.
    if (page_count == 0 || page_count + 1 > protocol::kGpadlMaxWords) return BusError::kBadArgument;
    const uint32_t word_count = page_count + 1;
    auto* words = static_cast<uint64_t*>(mm::allocate(word_count * sizeof(uint64_t)));
    if (!words) return BusError::kNoMemory;
    const uint32_t used = ::hvkvm::vmbus::append_gpa_range(words, word_count, 0, page_count * kHvPageSize, 0, pfns);
    PendingReply reply;
    client::ClientError error = client::ClientError::kBadRanges;
    Status posted = Status::kSuccess;
    if (used == word_count) {
        MutexGuard guard(client_lock_);
        last_post_status_ = Status::kSuccess;
        error = client_->create_gpadl(device.relid(), GpaRangeList{words, word_count, 1}, gpadl);
        posted = last_post_status_;
        if (error == client::ClientError::kNone) expect_reply(reply, ReplyKind::kGpadlCreated, gpadl, device.relid());
    }
    mm::free(words);  // the messages carry copies
    if (error != client::ClientError::kNone) return client_error(error);
    if (posted != Status::kSuccess) {
        // The host did not get every part, so it will never answer; the client keeps the GPADL
        // as "being created" until the channel is released or the bus unloads.
        forget_reply(reply);
        return BusError::kPostFailed;
    }
    const BusError waited = wait_reply(reply);
    if (waited != BusError::kNone) return waited;
    return reply.status == protocol::kStatusSuccess ? BusError::kNone : BusError::kRefused;
}

BusError Bus::teardown_gpadl(const Device& device, uint32_t gpadl) {
    PendingReply reply;
    {
        MutexGuard guard(client_lock_);
        last_post_status_ = Status::kSuccess;
        const client::ClientError error = client_->teardown_gpadl(gpadl);
        if (error != client::ClientError::kNone) return client_error(error);
        if (last_post_status_ != Status::kSuccess) return BusError::kPostFailed;
        expect_reply(reply, ReplyKind::kGpadlTornDown, gpadl, device.relid());
    }
    return wait_reply(reply);
}

BusError Bus::open_channel(const Device& device, uint32_t gpadl, uint32_t downstream_page_offset, uint32_t target_cpu,
                           const uint8_t* user_data) {
    PendingReply reply;
    {
        MutexGuard guard(client_lock_);
        last_post_status_ = Status::kSuccess;
        const client::ClientError error =
            client_->open(device.relid(), gpadl, downstream_page_offset, target_cpu, user_data);
        if (error != client::ClientError::kNone) return client_error(error);
        if (last_post_status_ != Status::kSuccess) return BusError::kPostFailed;
        expect_reply(reply, ReplyKind::kOpenResult, device.relid(), device.relid());
    }
    const BusError error = wait_reply(reply);
    if (error != BusError::kNone) return error;
    return reply.status == protocol::kStatusSuccess ? BusError::kNone : BusError::kRefused;
}

BusError Bus::close_channel(const Device& device) {
    MutexGuard guard(client_lock_);
    last_post_status_ = Status::kSuccess;
    const client::ClientError error = client_->close(device.relid());
    if (error != client::ClientError::kNone) return client_error(error);
    return last_post_status_ == Status::kSuccess ? BusError::kNone : BusError::kPostFailed;
}

void Bus::release_relid(uint32_t relid) {
    MutexGuard guard(client_lock_);
    if (client_) client_->release(relid);
}

// --- Channel interrupts ----------------------------------------------------------------------------

void Bus::route_interrupts(uint32_t relid, Channel* channel) {
    if (relid > client::kMaxRelid) return;
    __atomic_store_n(&routes_[relid], channel, __ATOMIC_RELEASE);
    if (!channel) wait_for_interrupt_handlers();  // nobody still holds the old channel
}

void Bus::channel_interrupt(uint32_t relid) {
    platform::InterruptsDisabled no_interrupts;  // a test host calls this from a thread
    Channel* channel = relid <= client::kMaxRelid ? __atomic_load_n(&routes_[relid], __ATOMIC_ACQUIRE) : nullptr;
    if (!channel) {
        bump(stats_.stray_interrupts);
        return;
    }
    bump(stats_.channel_interrupts);
    channel->on_interrupt();
}

BusStats Bus::stats() const {
    return {load(stats_.messages_received), load(stats_.messages_refused), load(stats_.messages_dropped),
            load(stats_.messages_posted),   load(stats_.post_retries),     load(stats_.channel_interrupts),
            load(stats_.stray_interrupts),  load(stats_.rescinds)};
}

}  // namespace hvkvm::guest::vmbus
