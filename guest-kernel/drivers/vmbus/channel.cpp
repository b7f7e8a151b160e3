#include "drivers/vmbus/channel.h"

#include <new>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest::vmbus {
namespace {

using ring::RingError;

void bump(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }
uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

uint32_t order_for(uint32_t pages) {
    uint32_t order = 0;
    while ((1u << order) < pages) ++order;
    return order;
}

// A zeroed block of 2^order pages, or nullptr.
uint8_t* zeroed_pages(uint32_t order) {
    const uint64_t address = mm::allocate_pages(order);
    if (address == 0) return nullptr;
    memset(reinterpret_cast<void*>(address), 0, uint64_t{kHvPageSize} << order);
    return reinterpret_cast<uint8_t*>(address);
}

uint64_t pfn_of(const uint8_t* page) { return reinterpret_cast<uint64_t>(page) / kHvPageSize; }  // identity map

// Ring pages in the order the GPADL lists them: control page, then the data pages.
uint32_t append_ring_pfns(uint64_t* pfns, uint32_t position, const uint8_t* control, const uint8_t* data,
                          uint32_t data_pages) {
    pfns[position++] = pfn_of(control);
    for (uint32_t page = 0; page < data_pages; ++page) pfns[position++] = pfn_of(data) + page;
    return position;
}

}  // namespace

// --- Open and close ------------------------------------------------------------------------------

BusError Channel::open(Device& device, const ChannelOptions& options, Channel*& channel) {
    channel = nullptr;
    // Each ring's data area is one block of the page allocator (so the ring library copies in and
    // out of it with one memcpy): at most 2^mm::kMaxOrder pages. Both rings, their control pages
    // and the range header must fit one GPADL.
    const uint32_t largest_ring_pages = 1u << mm::kMaxOrder;
    if (options.send_ring_pages == 0 || options.receive_ring_pages == 0 || options.send_ring_pages > largest_ring_pages ||
        options.receive_ring_pages > largest_ring_pages ||
        uint64_t{options.send_ring_pages} + options.receive_ring_pages + 2 + 1 > protocol::kGpadlMaxWords) {
        return BusError::kBadArgument;
    }
    if (device.is_rescinded()) return BusError::kRescinded;
    auto* opened = new (std::nothrow) Channel(device, options);
    if (!opened) return BusError::kNoMemory;
    if (!opened->allocate_rings()) {
        delete opened;
        return BusError::kNoMemory;
    }
    const BusError error = opened->describe_and_open();
    if (error != BusError::kNone) {
        opened->close();
        return error;
    }
    channel = opened;
    return BusError::kNone;
}

bool Channel::allocate_rings() {
    Ring* const rings[] = {&send_ring_, &receive_ring_};
    for (Ring* ring : rings) {
        ring->data_pages = ring == &send_ring_ ? options_.send_ring_pages : options_.receive_ring_pages;
        ring->data_order = order_for(ring->data_pages);
        ring->control = zeroed_pages(0);
        ring->data = zeroed_pages(ring->data_order);
        if (!ring->control || !ring->data) return false;
    }
    send_memory_ = new (std::nothrow) ring::ContiguousRingMemory(
        reinterpret_cast<ring::ControlPage*>(send_ring_.control), send_ring_.data, send_ring_.data_pages * kHvPageSize);
    receive_memory_ = new (std::nothrow) ring::ContiguousRingMemory(reinterpret_cast<ring::ControlPage*>(receive_ring_.control),
                                                                    receive_ring_.data,
                                                                    receive_ring_.data_pages * kHvPageSize);
    return send_memory_ && receive_memory_ && writer_.attach(*send_memory_) == RingError::kOk &&
           reader_.attach(*receive_memory_) == RingError::kOk;
}

// One GPADL for both rings (guest -> host first), then OPENCHANNEL naming where the second starts.
BusError Channel::describe_and_open() {
    const uint32_t downstream_offset = 1 + send_ring_.data_pages;
    const uint32_t page_count = downstream_offset + 1 + receive_ring_.data_pages;
    auto* pfns = static_cast<uint64_t*>(mm::allocate(page_count * sizeof(uint64_t)));
    if (!pfns) return BusError::kNoMemory;
    uint32_t position = append_ring_pfns(pfns, 0, send_ring_.control, send_ring_.data, send_ring_.data_pages);
    append_ring_pfns(pfns, position, receive_ring_.control, receive_ring_.data, receive_ring_.data_pages);
    BusError error = device_.bus().create_gpadl(device_, pfns, page_count, gpadl_);
    mm::free(pfns);
    if (error != BusError::kNone) return error;
    gpadl_created_ = true;
    // Routed before the open: the host may signal as soon as it has opened.
    device_.bus().route_interrupts(relid(), this);
    error = device_.bus().open_channel(device_, gpadl_, downstream_offset, options_.target_cpu, options_.user_data);
    opened_ = error == BusError::kNone;
    return error;
}

BusError Channel::close() {
    Bus& bus = device_.bus();
    BusError result = BusError::kNone;
    // A rescinded channel was closed by the host already (and the client no longer accepts it).
    if (opened_ && !is_rescinded()) result = bus.close_channel(device_);
    bus.route_interrupts(relid(), nullptr);
    on_rescind();  // wakes anyone still waiting on the channel; nothing may use it from here on
    bool pages_free_to_reuse = true;
    if (gpadl_created_) {
        const BusError teardown = bus.teardown_gpadl(device_, gpadl_);
        if (teardown != BusError::kNone) {
            kprint("vmbus: relid %u: ring GPADL %#x not torn down (%s): its pages are leaked\n", relid(), gpadl_,
                   bus_error_name(teardown));
            pages_free_to_reuse = false;
            if (result == BusError::kNone) result = teardown;
        }
    }
    if (pages_free_to_reuse) free_rings();
    delete this;
    return result;
}

void Channel::free_rings() {
    Ring* const rings[] = {&send_ring_, &receive_ring_};
    for (Ring* ring : rings) {
        if (ring->control) mm::free_pages(reinterpret_cast<uint64_t>(ring->control), 0);
        if (ring->data) mm::free_pages(reinterpret_cast<uint64_t>(ring->data), ring->data_order);
        *ring = Ring{};
    }
}

Channel::~Channel() {
    delete send_memory_;
    delete receive_memory_;
}

uint32_t Channel::max_inband_payload() const {
    const uint32_t largest = writer_.max_packet_size() - ring::kDescriptorSize - ring::kTrailerSize;
    const uint32_t len8_limit = 0xffff * ring::kPacketAlignment - ring::kDescriptorSize;
    return (largest < len8_limit ? largest : len8_limit) & ~(ring::kPacketAlignment - 1);
}

// --- Sending ---------------------------------------------------------------------------------------

void Channel::signal_host() {
    bump(stats_.host_signals);
    device_.bus().signal_host(device_.offer().connection_id);
}

RingError Channel::send(const ring::OutgoingPacket& packet, uint64_t deadline_ns) {
    for (;;) {
        uint64_t seen = 0;
        RingError error = RingError::kOk;
        {
            IrqSpinLockGuard guard(send_lock_);
            if (is_rescinded()) return RingError::kNotAttached;
            seen = interrupts_seen();
            // Counted before the host can see the request, so its completion never finds zero.
            if (packet.completion_requested) __atomic_fetch_add(&in_flight_, 1, __ATOMIC_RELAXED);
            error = writer_.write(packet);
            if (error == RingError::kOk) {
                bump(stats_.packets_sent);
                if (writer_.publish()) signal_host();
                return RingError::kOk;
            }
            if (packet.completion_requested) __atomic_fetch_sub(&in_flight_, 1, __ATOMIC_RELAXED);
        }
        if (error != RingError::kFull || deadline_ns == 0) return error;
        // write() has set pending_send_size and looked again; the host's release signals once
        // enough is free, and any interrupt after `seen` is worth another try.
        bump(stats_.send_full_waits);
        if (!wait_for_interrupt(seen, deadline_ns)) return is_rescinded() ? RingError::kNotAttached : RingError::kFull;
    }
}

uint32_t Channel::send_batch(const ring::OutgoingPacket* packets, uint32_t count, RingError& error) {
    IrqSpinLockGuard guard(send_lock_);
    error = is_rescinded() ? RingError::kNotAttached : RingError::kOk;
    uint32_t written = 0;
    while (error == RingError::kOk && written < count) {
        const ring::OutgoingPacket& packet = packets[written];
        if (packet.completion_requested) __atomic_fetch_add(&in_flight_, 1, __ATOMIC_RELAXED);
        error = writer_.write(packet);
        if (error == RingError::kOk) {
            ++written;
        } else if (packet.completion_requested) {
            __atomic_fetch_sub(&in_flight_, 1, __ATOMIC_RELAXED);
        }
    }
    if (written == 0) return 0;
    __atomic_fetch_add(&stats_.packets_sent, written, __ATOMIC_RELAXED);
    if (writer_.publish()) signal_host();
    error = RingError::kOk;
    return written;
}

RingError Channel::send_inband(uint64_t transaction_id, const void* data, uint32_t size, bool completion_requested,
                               uint64_t deadline_ns) {
    const ring::PayloadPiece piece{data, size};
    ring::OutgoingPacket packet;
    packet.type = ring::PacketType::kInBand;
    packet.transaction_id = transaction_id;
    packet.completion_requested = completion_requested;
    packet.payload = &piece;
    packet.payload_piece_count = size ? 1 : 0;
    return send(packet, deadline_ns);
}

RingError Channel::send_completion(uint64_t transaction_id, const void* data, uint32_t size, uint64_t deadline_ns) {
    const ring::PayloadPiece piece{data, size};
    ring::OutgoingPacket packet;
    packet.type = ring::PacketType::kCompletion;
    packet.transaction_id = transaction_id;
    packet.payload = &piece;
    packet.payload_piece_count = size ? 1 : 0;
    return send(packet, deadline_ns);
}

RingError Channel::send_gpa_direct(uint64_t transaction_id, const GpaRange* ranges, uint32_t range_count,
                                   const void* data, uint32_t size, bool completion_requested, uint64_t deadline_ns) {
    const ring::PayloadPiece piece{data, size};
    ring::OutgoingPacket packet;
    packet.type = ring::PacketType::kGpaDirect;
    packet.transaction_id = transaction_id;
    packet.completion_requested = completion_requested;
    packet.ranges = ranges;
    packet.range_count = range_count;
    packet.payload = &piece;
    packet.payload_piece_count = size ? 1 : 0;
    return send(packet, deadline_ns);
}

// --- Receiving --------------------------------------------------------------------------------------

// Reading from now on: the host need not interrupt until the reader is about to sleep again
// (Linux hv_begin_read). Only the reading thread changes the mask.
void Channel::begin_reading() {
    if (receive_masked_ || options_.driver_masks_interrupts) return;
    reader_.mask_signals();
    receive_masked_ = true;
}

RingError Channel::next(ring::IncomingPacket& packet, ring::RangeBuffer ranges) {
    begin_reading();  // unless the driver masks
    const RingError error = reader_.next(packet, ranges);
    if (error != RingError::kOk) return error;
    bump(stats_.packets_received);
    if (packet.type == ring::PacketType::kCompletion) {
        // A completion for nothing outstanding is the host's mistake; the count stays at zero.
        uint32_t in_flight = __atomic_load_n(&in_flight_, __ATOMIC_RELAXED);
        while (in_flight != 0 &&
               !__atomic_compare_exchange_n(&in_flight_, &in_flight, in_flight - 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
    return RingError::kOk;
}

RingError Channel::copy_payload(const ring::IncomingPacket& packet, uint32_t offset, void* destination, uint32_t size) {
    return reader_.copy_payload(packet, offset, destination, size);
}

void Channel::release() {
    if (reader_.release()) signal_host();
}

void Channel::mask_interrupts() { reader_.mask_signals(); }

bool Channel::unmask_interrupts() { return reader_.arm_signal(); }

bool Channel::wait_for_packets(uint64_t deadline_ns) {
    for (;;) {
        if (is_rescinded() || __atomic_load_n(&waits_stopped_, __ATOMIC_ACQUIRE)) return false;
        if (!receive_masked_) reader_.mask_signals();
        receive_masked_ = true;
        if (reader_.has_data()) return true;
        if (requests_in_flight() != 0) {
            const uint64_t poll_ns = __atomic_load_n(&options_.poll_ns, __ATOMIC_RELAXED);
            const uint64_t poll_until = time::now_ns() + poll_ns;
            const uint64_t stop = poll_until < deadline_ns ? poll_until : deadline_ns;
            while (time::now_ns() < stop) {
                if (reader_.has_data()) {
                    bump(stats_.waits_polled);
                    return true;
                }
                x86::pause();
            }
        }
        // About to sleep: re-enable the interrupt, then look once more (Linux hv_end_read).
        const uint64_t seen = interrupts_seen();
        receive_masked_ = false;
        if (reader_.arm_signal()) {
            bump(stats_.arm_races);
            continue;  // masked again and taken at the top
        }
        bump(stats_.waits_slept);
        if (!wait_for_interrupt(seen, deadline_ns)) return !is_rescinded() && reader_.has_data();
    }
}

// --- Interrupts --------------------------------------------------------------------------------------

bool Channel::wait_for_interrupt(uint64_t seen, uint64_t deadline_ns) {
    IrqSpinLockGuard guard(wake_lock_);
    auto stopped = [this] { return is_rescinded() || __atomic_load_n(&waits_stopped_, __ATOMIC_ACQUIRE); };
    while (interrupts_seen() == seen && !stopped()) {
        if (wakers_.wait(wake_lock_, deadline_ns) == WaitResult::kTimedOut) return false;
    }
    return !stopped();
}

void Channel::on_interrupt() {
    {
        SpinLockGuard guard(wake_lock_);  // interrupts are off
        __atomic_fetch_add(&stats_.interrupts, 1, __ATOMIC_RELEASE);
        wakers_.wake_all();
    }
    if (options_.interrupt_handler) options_.interrupt_handler(options_.interrupt_context);
}

void Channel::stop_waiting() {
    IrqSpinLockGuard guard(wake_lock_);
    __atomic_store_n(&waits_stopped_, true, __ATOMIC_RELEASE);
    wakers_.wake_all();
}

void Channel::on_rescind() {
    IrqSpinLockGuard guard(wake_lock_);
    __atomic_store_n(&rescinded_, true, __ATOMIC_RELEASE);
    wakers_.wake_all();
}

ChannelStats Channel::stats() const {
    return {load(stats_.packets_sent), load(stats_.packets_received), load(stats_.host_signals),
            load(stats_.interrupts),   load(stats_.waits_polled),     load(stats_.waits_slept),
            load(stats_.arm_races),    load(stats_.send_full_waits)};
}

}  // namespace hvkvm::guest::vmbus
