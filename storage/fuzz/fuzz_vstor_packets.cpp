// libFuzzer target: storvsp's packet handling facing a hostile guest, without rings or I/O. Each
// input is a stream of vstor packets (payload, GPA-direct ranges, flags, channel) fed to the
// protocol session; SRBs are mapped through a small fake guest RAM and run by the SCSI target, and
// their block operations "complete" as the input says (success, EIO, ENOSPC, short, EINVAL).
// Checked: answers stay within the packet size, buffers within the SRB's pages and guest RAM,
// block operations within the disk and the transfer limit, sense within its buffer, and every
// data copy inside the buffer (ASan).
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "services/storvsp/guest_buffer.h"
#include "services/storvsp/storvsp_protocol.h"
#include "storage/scsi/scsi_target.h"
#include "vmbus/fuzz/fuzz_input.h"

using namespace hvkvm;
using namespace hvkvm::root::storvsp;
namespace scsi = hvkvm::storage::scsi;
using vmbus::fuzz::check;
using vmbus::fuzz::FuzzInput;

namespace {

constexpr uint32_t kRamPages = 32;
constexpr uint64_t kDiskBlocks = 4096;
constexpr ControllerLimits kLimits{3, 64 * 1024};

class FakeRam final : public GuestPages {
public:
    FakeRam() : bytes_(kRamPages * 4096) {}
    uint8_t* page(uint64_t pfn) const override {
        return pfn < kRamPages ? const_cast<uint8_t*>(bytes_.data()) + pfn * 4096 : nullptr;
    }
    bool contains(const iovec& segment) const {
        const auto* start = static_cast<const uint8_t*>(segment.iov_base);
        return start >= bytes_.data() && start + segment.iov_len <= bytes_.data() + bytes_.size();
    }

private:
    std::vector<uint8_t> bytes_;
};

void make_ready(ProtocolSession& session) {
    vmbus::services::storage::Packet packet{};
    packet.flags = vmbus::services::storage::kFlagRequestCompletion;
    PacketView view;
    view.completion_requested = true;
    view.payload = reinterpret_cast<const uint8_t*>(&packet);
    view.payload_size = sizeof packet;
    const vmbus::services::storage::Operation sequence[] = {
        vmbus::services::storage::Operation::kBeginInitialization, vmbus::services::storage::Operation::kQueryProtocolVersion,
        vmbus::services::storage::Operation::kQueryProperties, vmbus::services::storage::Operation::kEndInitialization};
    for (auto operation : sequence) {
        packet.operation = operation;
        packet.version.major_minor = vmbus::services::storage::kVersionWin10;
        session.accept(view, true);
    }
    check(session.ready());
}

scsi::BlockIoResult io_result(uint8_t outcome, const scsi::Execution& execution) {
    scsi::BlockIoResult result;
    if (execution.op_count == 0) return result;
    result.failed_op = outcome % execution.op_count;
    switch (outcome & 7) {
        case 1: result.error = EIO; break;
        case 2: result.error = ENOSPC; break;
        case 3: result.short_transfer = true; result.bytes_done = execution.ops[result.failed_op].length / 2; break;
        case 4: result.error = EINVAL; break;
        default: break;
    }
    return result;
}

void run_srb(Decision& decision, const scsi::ScsiTarget& target, const FakeRam& ram, uint8_t outcome) {
    check(decision.data.length <= kLimits.max_transfer_bytes);
    std::vector<iovec> segments;
    if (decision.data.length != 0) {
        if (!map_data_range(ram, decision.data, segments)) return;
        uint64_t total = 0;
        for (const iovec& segment : segments) {
            check(ram.contains(segment));
            total += segment.iov_len;
        }
        check(total == decision.data.length);
    }
    IovecBuffer buffer(segments, decision.data.length);
    const auto& srb = decision.srb;
    const scsi::Command command{srb.cdb, srb.cdb_length,
                                srb.data_in == 0 ? scsi::DataDirection::kToDevice
                                                 : srb.data_in == 1 ? scsi::DataDirection::kFromDevice : scsi::DataDirection::kNone};
    const scsi::Execution execution = target.execute(srb.lun, command, buffer);
    scsi::Completion completion = execution.completion;
    if (execution.needs_io()) {
        check(execution.op_count <= scsi::kMaxUnmapDescriptors);
        for (uint32_t i = 0; i < execution.op_count; ++i) {
            const scsi::BlockOp& op = execution.ops[i];
            check(op.offset + op.length <= kDiskBlocks * scsi::kBlockSize && op.offset % scsi::kBlockSize == 0);
            if (op.kind == scsi::BlockOpKind::kRead || op.kind == scsi::BlockOpKind::kWrite)
                check(op.length <= kLimits.max_transfer_bytes && op.length <= decision.data.length);
        }
        completion = target.unit(srb.lun)->complete_block_io(execution, io_result(outcome, execution));
    }
    check(completion.transferred <= decision.data.length);
    uint8_t sense[scsi::kFixedSenseLength + 2];
    const uint32_t sense_length =
        completion.kind == scsi::CompletionKind::kCheckCondition ? scsi::encode_fixed_sense(completion.sense, sense, sizeof sense) : 0;
    check(sense_length <= scsi::kFixedSenseLength);
    srb_answer(decision, SrbOutcome{completion.status(), vmbus::services::storage::kSrbStatusSuccess, completion.transferred,
                                    sense_length ? sense : nullptr, sense_length});
    check(decision.answer_size == vmbus::services::storage::kPacketSize);
    check(decision.answer.srb.data_transfer_length <= srb.data_transfer_length);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput input(data, size);
    static const FakeRam ram;
    scsi::DiskProperties properties;
    properties.block_count = kDiskBlocks;
    properties.max_transfer_bytes = kLimits.max_transfer_bytes;
    properties.serial = "fuzz";
    const uint8_t setup = input.take<uint8_t>();
    properties.read_only = setup & 2;
    const scsi::LogicalUnit unit(properties);
    const scsi::ScsiTarget target({&unit});
    ProtocolSession session(kLimits);
    if (setup & 1) make_ready(session);

    while (input.remaining() != 0) {
        const uint8_t control = input.take<uint8_t>();
        uint8_t payload[vmbus::services::storage::kPacketSize] = {};
        const uint8_t payload_size = input.take<uint8_t>();
        size_t taken = 0;
        const uint8_t* bytes = input.take_bytes(payload_size < sizeof payload ? payload_size : sizeof payload, taken);
        std::memcpy(payload, bytes, taken);
        PacketView view;
        view.completion_requested = control & 2;
        view.gpa_direct = control & 4;
        view.transaction_id = input.take<uint16_t>();
        view.payload = payload;
        view.payload_size = payload_size;
        std::vector<uint64_t> words;
        if (view.gpa_direct) {
            const uint8_t range_count = input.take<uint8_t>() % 4;
            const uint8_t word_count = input.take<uint8_t>() % 40;
            for (uint8_t i = 0; i < word_count; ++i) words.push_back(input.take<uint64_t>());
            uint32_t used = 0;
            // Ranges the ring reader would refuse never reach storvsp.
            if (vmbus::validate_gpa_ranges(words.data(), static_cast<uint32_t>(words.size()), range_count, used) !=
                vmbus::GpaRangeError::kNone)
                continue;
            view.ranges = vmbus::GpaRangeList{words.data(), used, range_count};
        }
        const uint8_t outcome = input.take<uint8_t>();
        Decision decision = session.accept(view, control & 1);
        switch (decision.verdict) {
            case Verdict::kDrop: check(!view.completion_requested); break;
            case Verdict::kAnswer:
                check(decision.answer_size >= vmbus::services::storage::kPacketHeaderSize &&
                      decision.answer_size <= vmbus::services::storage::kPacketSize);
                break;
            case Verdict::kCreateSubChannels:
                check(decision.sub_channel_count <= kLimits.max_sub_channels);
                session.finish_create_sub_channels(decision, outcome & 1);
                break;
            case Verdict::kExecuteSrb:
                check(session.ready());
                run_srb(decision, target, ram, outcome);
                break;
        }
    }
    return 0;
}
