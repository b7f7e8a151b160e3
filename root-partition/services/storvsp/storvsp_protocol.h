// The storvsp side of the storage protocol (vmbus/services/storage.h), without rings or I/O: what
// one incoming vstor packet means in the controller's current state, and the answers. The
// controller's channels (storvsp_channel.h) copy each packet out of the ring once, hand the copy
// here, and act on the verdict. Dependency-free, so tests and the fuzzer drive it directly.
//
// State (one per controller, shared by its channels; OpenVMM's InitState):
//   kBeginInitialization -> kQueryVersion -> kQueryProperties -> kEndInitialization -> kReady.
// Initialization packets are accepted on the primary channel only, in that order; anything out of
// order is answered kStatusInvalidDeviceState and changes nothing. CREATE_SUB_CHANNELS is accepted
// on the primary after QUERY_PROPERTIES. EXECUTE_SRB is served on every channel once ready.
// The primary's close resets the state (the guest starts over with BEGIN_INITIALIZATION).
#pragma once

#include <cstdint>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/services/storage.h"

namespace hvkvm::root::storvsp {

namespace wire = vmbus::services::storage;

// What this controller reports in QUERY_PROPERTIES and enforces.
struct ControllerLimits {
    uint16_t max_sub_channels = 0;          // one channel per guest vCPU: vCPUs - 1, capped
    uint32_t max_transfer_bytes = 1u << 20;  // per SRB; a multiple of 4 KiB
};

// One packet as read from the ring: its descriptor fields, a copy of (the start of) its payload,
// and for GPA-direct packets the validated range words (vmbus/ring).
struct PacketView {
    bool gpa_direct = false;
    bool completion_requested = false;
    uint64_t transaction_id = 0;
    const uint8_t* payload = nullptr;  // the copy: min(payload_size, kPacketSize) bytes
    uint32_t payload_size = 0;         // the packet's full payload size
    vmbus::GpaRangeList ranges;
};

// The data buffer of an SRB: one GPA range's pages, of which the first `length` bytes are used.
struct DataRange {
    uint32_t byte_offset = 0;  // in the first page
    uint32_t length = 0;       // data_transfer_length
    const uint64_t* pfns = nullptr;
    uint32_t pfn_count = 0;    // pages the used bytes touch
};

enum class Verdict : uint8_t {
    kAnswer,             // send `answer` now
    kExecuteSrb,         // run `srb` on `data`, then answer with srb_answer()
    kCreateSubChannels,  // offer `sub_channel_count` sub-channels, then sub_channels_answer()
    kDrop,               // no answer possible or wanted (counted by the caller)
};

struct Decision {
    Verdict verdict = Verdict::kDrop;
    uint64_t transaction_id = 0;
    uint32_t answer_size = 0;  // bytes of the completion packet's payload (header + body)
    wire::Packet answer{};
    wire::ScsiRequest srb{};
    DataRange data;
    uint16_t sub_channel_count = 0;
};

enum class InitState : uint8_t { kBeginInitialization, kQueryVersion, kQueryProperties, kEndInitialization, kReady };
const char* init_state_name(InitState state);

class ProtocolSession {
public:
    explicit ProtocolSession(ControllerLimits limits) : limits_(limits) {}

    Decision accept(const PacketView& packet, bool primary);
    // After kCreateSubChannels: the answer, and (success) the count is remembered.
    void finish_create_sub_channels(Decision& decision, bool offered);
    // The primary channel closed: initialization starts over.
    void reset();

    InitState state() const { return state_; }
    bool ready() const { return state_ == InitState::kReady; }
    uint16_t version() const { return version_; }
    uint16_t sub_channels() const { return sub_channels_; }
    const ControllerLimits& limits() const { return limits_; }

private:
    void answer_initialization(const PacketView& packet, wire::Operation operation, Decision& decision);
    void decide_srb(const PacketView& packet, Decision& decision) const;

    ControllerLimits limits_;
    InitState state_ = InitState::kBeginInitialization;
    uint16_t version_ = 0;
    uint16_t sub_channels_ = 0;
};

// The answer to an SRB: the SCSI outcome in a vmscsi_request (status, SRB status, bytes moved,
// sense when there is some) and the vstor status Windows storvsp derives from the SRB status.
struct SrbOutcome {
    uint8_t scsi_status = 0;
    uint8_t srb_status = wire::kSrbStatusSuccess;  // code only; the autosense flag is added here
    uint32_t transferred = 0;
    const uint8_t* sense = nullptr;  // fixed-format sense, or nullptr
    uint32_t sense_length = 0;       // <= wire::kSenseBufferSize
};
void srb_answer(Decision& decision, const SrbOutcome& outcome);
uint32_t vstor_status_of(uint8_t srb_status);

}  // namespace hvkvm::root::storvsp
