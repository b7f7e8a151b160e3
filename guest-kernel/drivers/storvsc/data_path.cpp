// storvsc's data path: a block command becomes one EXECUTE_SRB on its CPU's channel, completions
// are reaped from the channel's interrupt or a polling waiter and matched to their request by
// transaction id; raw requests (initialization, tests) share the slot table.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "drivers/storvsc/controller.h"
#include "kernel/console.h"

namespace hvkvm::guest::storvsc {

using block::IoStatus;

void lane_interrupt(void* context) {
    Lane& lane = *static_cast<Lane*>(context);
    bump(lane.counters.interrupts);
    if (this_cpu().index != lane.target_cpu) bump(lane.counters.interrupt_cpu_mismatches);
    Controller& controller = *lane.controller;
    // Before the disks exist, requests are raw and their waiters poll.
    if (const Lun* first = controller.ready() ? controller.lun_at(0) : nullptr) block::interrupt(*first->info.device, lane.index);
}

// --- the lane: sending and reaping -------------------------------------------------------------------

RingError Lane::send(uint64_t id, const vmbus::GpaRange* range, const void* payload, uint32_t size) {
    IrqSpinLockGuard guard(use_lock);
    if (!channel) return RingError::kNotAttached;
    const RingError error = range ? channel->send_gpa_direct(id, range, 1, payload, size, true, 0)
                                  : channel->send_inband(id, payload, size, true, 0);
    if (error == RingError::kOk) bump(counters.requests);
    else bump(counters.send_failures);
    return error;
}

uint32_t Lane::reap() {
    platform::InterruptsDisabled no_interrupts;
    uint32_t completed = 0;
    __atomic_store_n(&reap_again, true, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&reap_again, __ATOMIC_SEQ_CST) && !__atomic_exchange_n(&reaping, true, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&reap_again, false, __ATOMIC_SEQ_CST);
        if (vmbus::Channel* open = __atomic_load_n(&channel, __ATOMIC_SEQ_CST)) completed += drain(*open);
        __atomic_store_n(&reaping, false, __ATOMIC_SEQ_CST);
    }
    return completed;
}

// Every packet the host has published, then one release (one index store, at most one signal).
// The host interrupts only when it finds the ring empty, judged by the read index, which moves
// only at the release: a packet published between the last look and the release raised no
// interrupt, so once the index is stored the ring is looked at again.
uint32_t Lane::drain(vmbus::Channel& open) {
    uint32_t packets = 0;
    for (;;) {
        uint32_t batch = 0;
        for (;;) {
            ring::IncomingPacket packet;
            const RingError error = open.next(packet);
            if (error == RingError::kEmpty) break;
            if (error != RingError::kOk) {
                kprint("storvsc: channel %u: host -> guest ring corrupt (%s): no more completions from it\n", index,
                       ring::ring_error_name(error));
                if (batch) open.release();
                return packets + batch;
            }
            handle(open, packet);
            ++batch;
        }
        if (batch == 0) return packets;
        open.release();
        packets += batch;
        // Read index stored, then the write index loaded: fenced, as the host fences between
        // storing its write index and loading ours (Dekker), so one of us sees the other.
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!open.has_packets()) return packets;
        bump(counters.late_packets);
    }
}

void Lane::handle(vmbus::Channel& open, const ring::IncomingPacket& packet) {
    if (packet.type != ring::PacketType::kCompletion) {
        bump(counters.unsolicited);  // ENUMERATE_BUS, REMOVE_DEVICE: disks are fixed here
        return;
    }
    InFlight request;
    if (!requests.take(packet.transaction_id, request)) return;  // counted by the table
    bump(counters.completions);
    wire::Packet answer{};
    const uint32_t copied = packet.payload_size < sizeof answer ? packet.payload_size : sizeof answer;
    open.copy_payload(packet, 0, &answer, copied);
    if (request.raw) {
        request.raw->answer = answer;
        request.raw->answer_size = packet.payload_size;
        __atomic_store_n(&raw_done, true, __ATOMIC_RELEASE);
        return;
    }
    block::Command& command = *request.command;
    const scsi_commands::Outcome outcome = scsi_commands::interpret(answer, packet.payload_size, request.expected_bytes);
    if (outcome.status != IoStatus::kOk)
        controller->log_error(*controller->lun_at(static_cast<uint32_t>(Requests::slot_of(packet.transaction_id) / kQueueDepth)),
                              command, outcome);
    block::complete(command, outcome.status, outcome.detail);
}

// While any LUN's waiter polls this channel, the host is asked not to interrupt.
void Lane::set_polled(bool polled) {
    IrqSpinLockGuard guard(mask_lock);
    if (polled ? pollers++ != 0 : --pollers != 0) return;
    vmbus::Channel* open = channel;
    if (!open) return;
    if (polled) open->mask_interrupts();
    else open->unmask_interrupts();  // what slipped in is reaped by the block layer's last look
}

// --- the block driver --------------------------------------------------------------------------------

void Lun::start(block::Command& command) {
    Lane& lane = *controller->lane(command.queue);
    const uint32_t slot_index = index * kQueueDepth + command.tag;

    wire::Packet packet{};
    packet.operation = wire::Operation::kExecuteSrb;
    packet.flags = wire::kFlagRequestCompletion;
    wire::ScsiRequest& srb = packet.srb;
    srb.length = sizeof(wire::ScsiRequest);
    srb.lun = info.lun;
    srb.sense_info_length = wire::kSenseBufferSize;
    srb.srb_flags = wire::kSrbFlagDisableSynchTransfer;
    const uint32_t bytes = command.sectors * block::kSectorSize;
    vmbus::GpaRange range{};
    if (command.operation == block::Operation::kFlush) {
        srb.cdb_length = scsi_commands::synchronize_cache10(srb.cdb);
        srb.data_in = wire::kDataNone;
    } else {
        const bool write = command.operation == block::Operation::kWrite;
        srb.cdb_length = scsi_commands::read_write16(srb.cdb, write, command.fua, command.sector, command.sectors);
        srb.data_in = write ? wire::kDataOut : wire::kDataIn;
        srb.srb_flags |= write ? wire::kSrbFlagDataOut : wire::kSrbFlagDataIn;
        srb.data_transfer_length = bytes;
        // The block layer joins the command's pages into one page list (Limits::page_list).
        uint64_t* pfns = lane.pfns + uint64_t{slot_index} * kMaxPfns;
        uint32_t count = 0;
        for (uint32_t i = 0; i < command.segment_count; ++i) {
            const block::Segment& segment = command.segments[i];
            for (uint64_t page = segment.physical & ~uint64_t{vmbus::kHvPageSize - 1};
                 page < segment.physical + segment.bytes && count < kMaxPfns; page += vmbus::kHvPageSize)
                pfns[count++] = page / vmbus::kHvPageSize;
        }
        range = {bytes, static_cast<uint32_t>(command.segments[0].physical % vmbus::kHvPageSize), pfns, count};
    }
    const uint64_t id = lane.requests.claim(slot_index, InFlight{&command, nullptr, bytes});
    const RingError sent = controller->gone() ? RingError::kNotAttached
                                              : lane.send(id, command.operation == block::Operation::kFlush ? nullptr : &range,
                                                          &packet, sizeof packet);
    InFlight unsent;
    if (sent != RingError::kOk && lane.requests.cancel(slot_index, id, unsent))
        block::complete(command, IoStatus::kDeviceError, sent == RingError::kNotAttached ? kDetailControllerGone : kDetailSendFailed);
}

uint32_t Lun::reap(uint32_t queue) { return controller->lane(queue)->reap(); }

void Lun::set_completion_interrupts(uint32_t queue, bool enabled) { controller->lane(queue)->set_polled(!enabled); }

// --- raw requests --------------------------------------------------------------------------------------

RawResult Controller::execute_raw(uint32_t lane_index, RawRequest& request, uint64_t timeout_ns) {
    MutexGuard one_at_a_time(raw_lock_);
    Lane* lane = this->lane(lane_index);
    if (!lane || gone()) return RawResult::kGone;
    __atomic_store_n(&lane->raw_done, false, __ATOMIC_RELAXED);
    request.answer_size = 0;
    const uint64_t deadline = time::now_ns() + timeout_ns;
    const uint64_t id = lane->requests.claim(kRawSlot, InFlight{nullptr, &request, 0});
    InFlight abandoned;
    if (lane->send(id, request.range, request.payload, request.payload_size) != RingError::kOk) {
        lane->requests.cancel(kRawSlot, id, abandoned);
        return RawResult::kSendFailed;
    }
    for (;;) {
        lane->reap();
        if (__atomic_load_n(&lane->raw_done, __ATOMIC_ACQUIRE)) return lane->channel ? RawResult::kOk : RawResult::kGone;
        if (time::now_ns() > deadline && lane->requests.cancel(kRawSlot, id, abandoned)) return RawResult::kTimeout;
        x86::pause();
    }
}

}  // namespace hvkvm::guest::storvsc
