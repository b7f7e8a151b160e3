#include "services/storvsp/storvsp_protocol.h"

#include <algorithm>
#include <cstring>

namespace hvkvm::root::storvsp {
namespace {

void answer_with(Decision& decision, uint32_t status, const void* body = nullptr, uint32_t body_size = 0) {
    decision.verdict = Verdict::kAnswer;
    decision.answer = wire::Packet{};
    decision.answer.operation = wire::Operation::kCompleteIo;
    decision.answer.status = status;
    // The answer carries as many body bytes as the request did (OpenVMM: Linux sized its early
    // initialization packets for the Win7 request): copy what fits, the rest stays zero.
    const uint32_t room = decision.answer_size - wire::kPacketHeaderSize;
    if (body != nullptr) std::memcpy(decision.answer.body, body, std::min(body_size, room));
}

}  // namespace

const char* init_state_name(InitState state) {
    switch (state) {
        case InitState::kBeginInitialization: return "begin-initialization";
        case InitState::kQueryVersion: return "query-version";
        case InitState::kQueryProperties: return "query-properties";
        case InitState::kEndInitialization: return "end-initialization";
        case InitState::kReady: return "ready";
    }
    return "?";
}

Decision ProtocolSession::accept(const PacketView& packet, bool primary) {
    Decision decision;
    decision.transaction_id = packet.transaction_id;
    // Every storvsc request asks for an answer; without that flag there is no one to tell.
    if (!packet.completion_requested) return decision;
    if (packet.payload_size < wire::kPacketHeaderSize) {
        decision.answer_size = wire::kPacketHeaderSize;
        answer_with(decision, wire::kStatusInvalidParameter);
        return decision;
    }
    decision.answer_size = std::min(packet.payload_size, wire::kPacketSize);
    uint32_t raw_operation;
    std::memcpy(&raw_operation, packet.payload, sizeof raw_operation);
    const auto operation = static_cast<wire::Operation>(raw_operation);
    switch (operation) {
        case wire::Operation::kBeginInitialization:
        case wire::Operation::kQueryProtocolVersion:
        case wire::Operation::kQueryProperties:
        case wire::Operation::kEndInitialization:
            if (!primary) answer_with(decision, wire::kStatusInvalidDeviceState);
            else answer_initialization(packet, operation, decision);
            return decision;
        case wire::Operation::kCreateSubChannels: {
            if (!primary || state_ < InitState::kEndInitialization) {
                answer_with(decision, wire::kStatusInvalidDeviceState);
                return decision;
            }
            if (packet.payload_size < wire::kPacketHeaderSize + sizeof(uint16_t)) {
                answer_with(decision, wire::kStatusInvalidParameter);
                return decision;
            }
            uint16_t count;
            std::memcpy(&count, packet.payload + wire::kPacketHeaderSize, sizeof count);
            if (count > limits_.max_sub_channels) {
                answer_with(decision, wire::kStatusInvalidParameter);
                return decision;
            }
            decision.verdict = Verdict::kCreateSubChannels;
            decision.sub_channel_count = count;
            return decision;
        }
        case wire::Operation::kExecuteSrb: decide_srb(packet, decision); return decision;
        case wire::Operation::kResetLun:
        case wire::Operation::kResetAdapter:
        case wire::Operation::kResetBus:
            // No-ops on Hyper-V (OpenVMM): nothing is queued that a reset could cancel.
            answer_with(decision, ready() ? wire::kStatusSuccess : wire::kStatusInvalidDeviceState);
            return decision;
        default:
            // COMPLETE_IO, REMOVE_DEVICE, ENUMERATE_BUS go the other way; FC_HBA_DATA is for Fibre
            // Channel controllers only; anything else is unknown.
            answer_with(decision, wire::kStatusInvalidDeviceRequest);
            return decision;
    }
}

void ProtocolSession::answer_initialization(const PacketView& packet, wire::Operation operation, Decision& decision) {
    switch (operation) {
        case wire::Operation::kBeginInitialization:
            if (state_ != InitState::kBeginInitialization) break;
            state_ = InitState::kQueryVersion;
            answer_with(decision, wire::kStatusSuccess);
            return;
        case wire::Operation::kQueryProtocolVersion: {
            if (state_ != InitState::kQueryVersion) break;
            if (packet.payload_size < wire::kPacketHeaderSize + sizeof(wire::ProtocolVersion)) {
                answer_with(decision, wire::kStatusInvalidParameter);
                return;
            }
            wire::ProtocolVersion version;
            std::memcpy(&version, packet.payload + wire::kPacketHeaderSize, sizeof version);
            const bool accepted = wire::is_accepted_version(version.major_minor);
            const wire::ProtocolVersion echoed{version.major_minor, 0};
            answer_with(decision, accepted ? wire::kStatusSuccess : wire::kStatusRevisionMismatch, &echoed, sizeof echoed);
            if (accepted) {
                version_ = version.major_minor;
                state_ = InitState::kQueryProperties;
            }
            return;
        }
        case wire::Operation::kQueryProperties: {
            if (state_ != InitState::kQueryProperties) break;
            wire::ChannelProperties properties{};
            properties.max_channel_count = limits_.max_sub_channels;
            properties.flags = wire::kChannelSupportsMultiChannel;
            properties.max_transfer_bytes = limits_.max_transfer_bytes;
            answer_with(decision, wire::kStatusSuccess, &properties, sizeof properties);
            state_ = InitState::kEndInitialization;
            return;
        }
        case wire::Operation::kEndInitialization:
            if (state_ != InitState::kEndInitialization) break;
            state_ = InitState::kReady;
            answer_with(decision, wire::kStatusSuccess);
            return;
        default: break;
    }
    answer_with(decision, wire::kStatusInvalidDeviceState);
}

void ProtocolSession::decide_srb(const PacketView& packet, Decision& decision) const {
    if (!ready()) {
        answer_with(decision, wire::kStatusInvalidDeviceState);
        return;
    }
    if (packet.payload_size < wire::kPacketSize) {  // a truncated vmscsi_request
        answer_with(decision, wire::kStatusInvalidParameter);
        return;
    }
    std::memcpy(&decision.srb, packet.payload + wire::kPacketHeaderSize, sizeof decision.srb);
    const wire::ScsiRequest& srb = decision.srb;
    const uint32_t length = srb.data_transfer_length;
    auto malformed = [&] { srb_answer(decision, SrbOutcome{0, wire::kSrbStatusInvalidRequest, 0, nullptr, 0}); };
    if (srb.cdb_length == 0 || srb.cdb_length > wire::kCdbMaxLength || srb.data_in > wire::kDataNone) return malformed();
    if (length > limits_.max_transfer_bytes) return malformed();
    if (length == 0) {
        decision.verdict = Verdict::kExecuteSrb;
        return;
    }
    if (srb.data_in == wire::kDataNone) return malformed();
    // The buffer is the packet's one GPA range (Linux storvsc_queuecommand), at least as long as
    // the transfer.
    vmbus::GpaRange range;
    vmbus::GpaRangeCursor cursor = packet.ranges.cursor();
    if (!packet.gpa_direct || packet.ranges.range_count != 1 || !cursor.next(range) || range.byte_count < length)
        return malformed();
    decision.data = DataRange{range.byte_offset, length, range.pfns,
                              static_cast<uint32_t>(vmbus::gpa_range_pfn_count(length, range.byte_offset))};
    decision.verdict = Verdict::kExecuteSrb;
}

void ProtocolSession::finish_create_sub_channels(Decision& decision, bool offered) {
    if (offered) sub_channels_ = std::max(sub_channels_, decision.sub_channel_count);
    answer_with(decision, offered ? wire::kStatusSuccess : wire::kStatusUnsuccessful);
}

void ProtocolSession::reset() {
    state_ = InitState::kBeginInitialization;
    version_ = 0;
    sub_channels_ = 0;
}

uint32_t vstor_status_of(uint8_t srb_status) {
    switch (wire::srb_status_code(srb_status)) {
        case wire::kSrbStatusSuccess: return wire::kStatusSuccess;
        case wire::kSrbStatusInvalidLun: return wire::kStatusDeviceDoesNotExist;
        case wire::kSrbStatusSelectionTimeout: return wire::kStatusDeviceNotConnected;
        case wire::kSrbStatusDataOverrun: return wire::kStatusBufferOverflow;
        default: return wire::kStatusIoDeviceError;
    }
}

void srb_answer(Decision& decision, const SrbOutcome& outcome) {
    const wire::ScsiRequest& request = decision.srb;
    wire::ScsiRequest answer{};
    answer.length = sizeof(wire::ScsiRequest);
    const uint32_t sense_length = std::min(outcome.sense_length, wire::kSenseBufferSize);
    answer.srb_status = static_cast<uint8_t>(outcome.srb_status | (sense_length != 0 ? wire::kSrbStatusAutosenseValid : 0));
    answer.scsi_status = outcome.scsi_status;
    answer.path_id = request.path_id;
    answer.target_id = request.target_id;
    answer.lun = request.lun;
    answer.cdb_length = request.cdb_length;
    answer.sense_info_length = static_cast<uint8_t>(sense_length);
    answer.data_in = request.data_in;
    answer.data_transfer_length = outcome.transferred;
    if (sense_length != 0) std::memcpy(answer.sense_data, outcome.sense, sense_length);
    decision.answer_size = wire::kPacketSize;
    answer_with(decision, vstor_status_of(outcome.srb_status), &answer, sizeof answer);
}

}  // namespace hvkvm::root::storvsp
