#include "services/storvsp/storvsp_channel.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "services/storvsp/guest_buffer.h"
#include "services/storvsp/storvsp.h"

namespace hvkvm::root {

namespace wire = vmbus::services::storage;
namespace scsi = storage::scsi;
using storvsp::Verdict;
using vmbus::ring::RingError;

namespace {

// Guest RAM page by page, through the attached mapping (translate() checks every range).
class RamPages final : public storvsp::GuestPages {
public:
    explicit RamPages(const vmm::GuestMemory& memory) : memory_(memory) {}
    uint8_t* page(uint64_t pfn) const override {
        if (pfn > (~uint64_t{0} >> vmbus::kHvPageShift)) return nullptr;
        auto host = memory_.translate(pfn << vmbus::kHvPageShift, vmbus::kHvPageSize);
        return host ? reinterpret_cast<uint8_t*>(host->data()) : nullptr;
    }

private:
    const vmm::GuestMemory& memory_;
};

scsi::DataDirection direction_of(uint8_t data_in) {
    switch (data_in) {
        case wire::kDataOut: return scsi::DataDirection::kToDevice;
        case wire::kDataIn: return scsi::DataDirection::kFromDevice;
        default: return scsi::DataDirection::kNone;
    }
}

storage::FaultOperation fault_operation_of(scsi::BlockOpKind kind) {
    switch (kind) {
        case scsi::BlockOpKind::kRead: return storage::FaultOperation::kRead;
        case scsi::BlockOpKind::kWrite: return storage::FaultOperation::kWrite;
        case scsi::BlockOpKind::kFlush: return storage::FaultOperation::kFlush;
        case scsi::BlockOpKind::kPunchHole: return storage::FaultOperation::kUnmap;
    }
    return storage::FaultOperation::kNone;
}

// Range words of the largest page list a valid SRB needs: one range header and the PFNs of
// kMaxTransferBytes starting anywhere in a page.
constexpr uint32_t kRangeWords = 1 + Storvsp::kMaxTransferBytes / vmbus::kHvPageSize + 1;
// A GPA-direct header cannot hold more words than offset8 (16 bits, in 8-byte units) reaches.
constexpr uint32_t kMaxPacketRangeWords = 0xffff;

}  // namespace

StorvspChannel::StorvspChannel(VspServices& services, Storvsp& controller, uint16_t index,
                               std::chrono::nanoseconds poll_window)
    : Vsp(services), controller_(controller), index_(index), slots_(kSlots), range_words_(kRangeWords),
      poll_(poll_window) {
    free_slots_.reserve(kSlots);
    for (uint32_t i = kSlots; i-- > 0;) free_slots_.push_back(static_cast<uint16_t>(i));
}

StorvspChannel::~StorvspChannel() { close(); }

vmbus::channel::OfferInfo StorvspChannel::offer() const {
    vmbus::channel::OfferInfo info;
    info.interface_type = wire::kScsiInterfaceType;
    info.interface_instance = wire::scsi_controller_instance(0);
    info.sub_channel_index = index_;
    return info;
}

bool StorvspChannel::control(const nlohmann::json& request, ControlReply& reply) {
    if (index_ != 0 || request.value("command", "") != "storage") return false;
    nlohmann::json answer = controller_.report();
    answer["ok"] = true;
    reply(std::move(answer));
    return true;
}

bool StorvspChannel::on_open(const vmbus::channel::OpenRequest&) {
    ++generation_;  // completions of an earlier open are dropped
    return true;
}

void StorvspChannel::on_close() {
    controller_.drain(*this);
    while (!finished_.empty()) {
        release_slot(finished_.front());
        finished_.pop_front();
    }
    ++generation_;
    if (index_ == 0) controller_.primary_closed();
}

void StorvspChannel::serve() {
    if (!serving()) return;
    ++counters_.services;
    incoming().mask_signals();
    for (;;) {
        send_finished();
        bool signal = accept_requests();
        if (!serving()) return;  // the guest broke the ring
        controller_.engine().submit();
        send_finished();
        signal |= outgoing().publish();
        if (signal) {
            signal_guest();
            ++counters_.guest_signals;
        }
        // Stay masked while work is pending: its completions (or the guest freeing ring space,
        // which it signals whatever the mask, or room in the engine) bring the channel back.
        if (in_flight_ != 0 || !finished_.empty() || free_slots_.empty() || waiting_for_engine_) return;
        // Idle: poll a short window for the guest's next request before unmasking, so that a
        // queue-depth-1 stream does not signal (exit) per request (poll_window.h).
        const bool more = poll_.wait_for_data(incoming());
        counters_.poll_hits = poll_.hits();
        counters_.poll_misses = poll_.misses();
        counters_.poll_skipped = poll_.skipped();
        if (more) continue;
        if (!incoming().arm_signal()) return;
    }
}

bool StorvspChannel::accept_requests() {
    waiting_for_engine_ = false;
    for (;;) {
        if (free_slots_.empty()) {
            ++counters_.slots_exhausted;
            break;
        }
        // Room for the most operations one request can need (UNMAP); the other channels' I/O may
        // hold the rest, and their completions bring this channel back (Storvsp::serve_marked).
        if (!controller_.engine().has_room(scsi::kMaxUnmapDescriptors)) {
            waiting_for_engine_ = true;
            ++counters_.engine_full;
            break;
        }
        vmbus::ring::IncomingPacket packet;
        RingError error = incoming().next(packet, {range_words_.data(), static_cast<uint32_t>(range_words_.size())});
        if (error == RingError::kRangeBufferTooSmall) {
            // Larger than any valid request: read it whole once, so that it gets an error answer
            // instead of blocking the ring.
            if (oversized_words_.empty()) oversized_words_.resize(kMaxPacketRangeWords);
            error = incoming().next(packet, {oversized_words_.data(), kMaxPacketRangeWords});
            ++counters_.oversized_page_lists;
        }
        if (error == RingError::kEmpty) break;
        if (error != RingError::kOk) {
            fail(vmbus::ring::ring_error_name(error));
            return false;
        }
        if (!take_packet(packet)) return false;
    }
    return incoming().release();
}

bool StorvspChannel::take_packet(const vmbus::ring::IncomingPacket& packet) {
    ++counters_.requests;
    uint8_t payload[wire::kPacketSize] = {};
    const uint32_t copied = std::min(packet.payload_size, wire::kPacketSize);
    if (incoming().copy_payload(packet, 0, payload, copied) != RingError::kOk) {
        fail("a packet's payload could not be read");
        return false;
    }
    storvsp::PacketView view;
    view.gpa_direct = packet.type == vmbus::ring::PacketType::kGpaDirect;
    view.completion_requested = packet.completion_requested() && packet.type != vmbus::ring::PacketType::kCompletion;
    view.transaction_id = packet.transaction_id;
    view.payload = payload;
    view.payload_size = packet.payload_size;
    view.ranges = packet.ranges;

    const uint16_t index = free_slots_.back();
    Slot& slot = slots_[index];
    slot.decision = controller_.session().accept(view, index_ == 0);
    switch (slot.decision.verdict) {
        case Verdict::kDrop: ++counters_.dropped; return true;
        case Verdict::kAnswer: break;
        case Verdict::kCreateSubChannels:
            controller_.session().finish_create_sub_channels(slot.decision,
                                                             controller_.create_sub_channels(slot.decision.sub_channel_count));
            break;
        case Verdict::kExecuteSrb:
            free_slots_.pop_back();
            slot.generation = generation_;
            execute_srb(index);
            return true;
    }
    free_slots_.pop_back();
    slot.generation = generation_;
    finish(index);
    return true;
}

void StorvspChannel::execute_srb(uint16_t slot_index) {
    ++counters_.srbs;
    Slot& slot = slots_[slot_index];
    const wire::ScsiRequest& srb = slot.decision.srb;
    if (slot.decision.data.length != 0 && !storvsp::map_data_range(RamPages(services().memory), slot.decision.data, slot.segments)) {
        ++counters_.bad_page_lists;
        storvsp::srb_answer(slot.decision, storvsp::SrbOutcome{0, wire::kSrbStatusInvalidRequest, 0, nullptr, 0});
        finish(slot_index);
        return;
    }
    if (slot.decision.data.length == 0) slot.segments.clear();
    bool target_exists = false;
    const scsi::ScsiTarget& target = controller_.target_at(srb.path_id, srb.target_id, target_exists);
    storvsp::IovecBuffer buffer(slot.segments, slot.decision.data.length);
    const scsi::Command command{srb.cdb, srb.cdb_length, direction_of(srb.data_in)};
    slot.lun = srb.lun;
    slot.execution = target.execute(srb.lun, command, buffer);
    if (!slot.execution.needs_io()) {
        complete_scsi(slot, slot.execution.completion, target_exists);
        finish(slot_index);
        return;
    }
    start_block_io(slot_index);
}

void StorvspChannel::start_block_io(uint16_t slot_index) {
    Slot& slot = slots_[slot_index];
    const scsi::Execution& execution = slot.execution;
    const bool moves_data = execution.ops[0].kind == scsi::BlockOpKind::kRead || execution.ops[0].kind == scsi::BlockOpKind::kWrite;
    if (moves_data) {
        storvsp::truncate_segments(slot.segments, execution.ops[0].length);
        // O_DIRECT moves whole sectors between aligned memory and the disk; Linux's storvsc never
        // sends anything else, so refuse rather than bounce through a copy.
        if (controller_.disk(slot.lun).direct && !storvsp::segments_aligned(slot.segments, Storvsp::kSectorAlignment)) {
            ++counters_.misaligned;
            complete_scsi(slot, scsi::Completion::malformed(), true);
            finish(slot_index);
            return;
        }
    }
    ++counters_.io_srbs;
    slot.state = Slot::State::kInFlight;
    slot.ops_pending = execution.op_count;
    slot.io = scsi::BlockIoResult{};
    ++in_flight_;
    counters_.max_in_flight = std::max(counters_.max_in_flight, in_flight_);
    storage::IoEngine& engine = controller_.engine();
    storage::FaultInjector& faults = controller_.faults(slot.lun);
    DiskCounters& disk = controller_.disk_counters(slot.lun);
    for (uint32_t i = 0; i < execution.op_count; ++i) {
        const scsi::BlockOp& op = execution.ops[i];
        const uint64_t tag = Storvsp::make_tag(index_, slot_index, static_cast<uint8_t>(i), slot.generation);
        storage::FaultEffect effect;
        if (faults.next(fault_operation_of(op.kind), effect)) {
            if (effect == storage::FaultEffect::kEio) { engine.complete_now(-EIO, tag); continue; }
            if (effect == storage::FaultEffect::kEnospc) { engine.complete_now(-ENOSPC, tag); continue; }
            // A short transfer: the kernel really moves only the first half (sector-rounded).
            storvsp::truncate_segments(slot.segments, op.length / 2 / Storvsp::kSectorAlignment * Storvsp::kSectorAlignment);
            if (slot.segments.empty()) { engine.complete_now(0, tag); continue; }
        }
        const auto file = slot.lun;
        const auto count = static_cast<uint32_t>(slot.segments.size());
        switch (op.kind) {
            case scsi::BlockOpKind::kRead: ++disk.reads; engine.read(file, slot.segments.data(), count, op.offset, tag); break;
            case scsi::BlockOpKind::kWrite: ++disk.writes; engine.write(file, slot.segments.data(), count, op.offset, op.fua, tag); break;
            case scsi::BlockOpKind::kFlush: ++disk.flushes; engine.flush(file, tag); break;
            case scsi::BlockOpKind::kPunchHole: ++disk.unmaps; engine.punch_hole(file, op.offset, op.length, tag); break;
        }
    }
}

void StorvspChannel::io_done(uint16_t slot_index, uint8_t op, uint32_t generation, int32_t result) {
    if (slot_index >= kSlots) return;
    Slot& slot = slots_[slot_index];
    if (slot.state != Slot::State::kInFlight || slot.generation != generation || op >= slot.execution.op_count) return;
    const scsi::BlockOp& block_op = slot.execution.ops[op];
    DiskCounters& disk = controller_.disk_counters(slot.lun);
    const bool moves_data = block_op.kind == scsi::BlockOpKind::kRead || block_op.kind == scsi::BlockOpKind::kWrite;
    const bool failed = result < 0 || (moves_data && static_cast<uint64_t>(result) < block_op.length);
    if (failed) {
        ++disk.errors;
        // The first failure in op order is the one reported.
        if (slot.io.ok() || op < slot.io.failed_op) {
            slot.io.error = result < 0 ? -result : 0;
            slot.io.short_transfer = result >= 0;
            slot.io.failed_op = op;
            slot.io.bytes_done = result < 0 ? 0 : static_cast<uint64_t>(result);
        }
    } else if (block_op.kind == scsi::BlockOpKind::kRead) {
        disk.bytes_read += block_op.length;
    } else if (block_op.kind == scsi::BlockOpKind::kWrite) {
        disk.bytes_written += block_op.length;
    }
    if (--slot.ops_pending != 0) return;
    --in_flight_;
    if (slot.generation != generation_) {  // the channel closed meanwhile: nobody waits for it
        release_slot(slot_index);
        return;
    }
    complete_scsi(slot, controller_.unit(slot.lun).complete_block_io(slot.execution, slot.io), true);
    finish(slot_index);
}

// A missing LUN of the disks' target is an invalid LUN (Linux removes it); a path or target that
// does not exist did not answer its selection.
void StorvspChannel::complete_scsi(Slot& slot, const scsi::Completion& completion, bool target_exists) {
    storvsp::SrbOutcome outcome;
    uint8_t sense[scsi::kFixedSenseLength];
    switch (completion.kind) {
        case scsi::CompletionKind::kGood:
            outcome = {scsi::kStatusGood, wire::kSrbStatusSuccess, completion.transferred, nullptr, 0};
            break;
        case scsi::CompletionKind::kCheckCondition: {
            const uint32_t length = scsi::encode_fixed_sense(completion.sense, sense, sizeof sense);
            outcome = {scsi::kStatusCheckCondition, wire::kSrbStatusError, 0, sense, length};
            break;
        }
        case scsi::CompletionKind::kMalformedRequest:
            outcome = {0, wire::kSrbStatusInvalidRequest, 0, nullptr, 0};
            break;
        case scsi::CompletionKind::kNoSuchLogicalUnit:
            outcome = {0, target_exists ? wire::kSrbStatusInvalidLun : wire::kSrbStatusSelectionTimeout, 0, nullptr, 0};
            break;
    }
    storvsp::srb_answer(slot.decision, outcome);
}

void StorvspChannel::finish(uint16_t slot_index) {
    slots_[slot_index].state = Slot::State::kFinished;
    finished_.push_back(slot_index);
}

void StorvspChannel::release_slot(uint16_t slot_index) {
    slots_[slot_index].state = Slot::State::kFree;
    free_slots_.push_back(slot_index);
}

// Writes finished answers until the ring is full; the caller's publish() makes them visible.
void StorvspChannel::send_finished() {
    while (!finished_.empty()) {
        Slot& slot = slots_[finished_.front()];
        const RingError error =
            outgoing().write_completion(slot.decision.transaction_id, &slot.decision.answer, slot.decision.answer_size);
        if (error == RingError::kFull) {
            // The write published the answers before it (their signal comes from the publish()
            // that ends this batch) and asked the guest to signal once this one fits.
            ++counters_.ring_full;
            break;
        }
        if (error != RingError::kOk) {
            fail(vmbus::ring::ring_error_name(error));
            break;
        }
        ++counters_.answers;
        release_slot(finished_.front());
        finished_.pop_front();
    }
}

}  // namespace hvkvm::root
