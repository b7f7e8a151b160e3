// The host side of VMBus channel management, transport-agnostic and freestanding: it consumes the
// guest's channel messages (bytes, or already parsed) and emits its replies through a
// ServerTransport, as a root partition's VMBus server does. It covers version negotiation, offers
// (REQUESTOFFERS -> one OFFERCHANNEL per device, then ALLOFFERS_DELIVERED; later offers are sent
// as they come), GPADL establishment and teardown, open and close, rescind and relid release, and
// unload. Devices (VSPs) plug in through ChannelDevice.
//
// Every guest message is hostile: one that does not fit the current state is refused with a
// ServerError and changes nothing (apart from the failure replies Hyper-V defines: a refused
// GPADL gets GPADL_CREATED with a failure status, a refused open OPENCHANNEL_RESULT with one).
// The caller decides what repeated violations mean (log, count, disconnect).
//
// Not thread-safe: call it from one thread (the one that receives the guest's messages).
#pragma once

#include <stdint.h>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/protocol/gpadl.h"
#include "vmbus/protocol/message_codec.h"

namespace hvkvm::vmbus::channel {

inline constexpr uint32_t kMaxOffers = 64;
inline constexpr uint32_t kMaxGpadls = 256;
inline constexpr uint32_t kMaxGpadlsInProgress = 8;

// Where the server's messages go: the guest's SINT 2 message slot on the VP it asked for
// (ConnectionInfo::target_vcpu).
class ServerTransport {
public:
    virtual void send(const protocol::MessageBuffer& message) = 0;

protected:
    ~ServerTransport() = default;
};

// Storage for GPADL range words (the guest decides how large a GPADL is, within the server's
// limit). allocate() may return nullptr to refuse.
class GpadlStorage {
public:
    virtual uint64_t* allocate(uint32_t words) = 0;
    virtual void release(uint64_t* words, uint32_t count) = 0;

protected:
    ~GpadlStorage() = default;
};

// The ring GPADL of an open request, checked to be the layout Hyper-V uses: one page-aligned
// range, the guest -> host ring in pages [0, downstream_page_offset), the host -> guest ring in
// [downstream_page_offset, page_count), each at least a control page and one data page.
struct RingGpadl {
    uint32_t gpadl;
    const uint64_t* pfns;
    uint32_t page_count;
    uint32_t downstream_page_offset;
};

struct OpenRequest {
    uint32_t child_relid;
    uint32_t open_id;
    uint32_t target_vp;
    RingGpadl ring;
    uint8_t user_data[protocol::kUserDefinedBytes];
};

// A device behind an offer (a VSP). A device offering sub-channels (OfferInfo::sub_channel_index
// non-zero) is one ChannelDevice per channel.
class ChannelDevice {
public:
    // Returns the status for OPENCHANNEL_RESULT: kStatusSuccess, or a failure.
    virtual uint32_t open(const OpenRequest& request) = 0;
    // The guest closed the channel, or the host rescinded it, or the guest unloaded.
    virtual void close() = 0;

protected:
    ~ChannelDevice() = default;
};

struct OfferInfo {
    protocol::Guid interface_type{};
    protocol::Guid interface_instance{};
    uint16_t flags = 0;
    uint16_t mmio_megabytes = 0;
    // Non-zero: a sub-channel (multi-queue) of the open offer with the same interface type and
    // instance and index 0, its primary. A sub-channel is offered at once and lives only while its
    // primary is open: when the primary closes (or is rescinded) the server closes the
    // sub-channel and rescinds it; at unload it is forgotten, never offered again by itself
    // (OpenVMM vmbus_channel handle_close). The device asks for it again on the primary's next
    // open (storvsc's CREATE_SUB_CHANNELS).
    uint16_t sub_channel_index = 0;
    uint8_t user_defined[protocol::kUserDefinedBytes] = {};
};

struct ServerConfig {
    // From 5.0 on, VERSION_RESPONSE tells the guest where to post later messages.
    uint32_t message_connection_id = protocol::kMessageConnectionId;
    // The event connection id an offer gives for guest -> host signals: base + relid (OpenVMM
    // uses relid | SINT 2 << 12 for VTL 0).
    uint32_t event_connection_id_base = uint32_t{protocol::kVmbusMessageSint} << 12;
    // Largest GPADL accepted, in range words (range header + PFNs).
    uint32_t max_gpadl_words = protocol::kGpadlMaxWords;
};

enum class ServerError : uint8_t {
    kNone,
    kParse,                  // the bytes did not parse (last_parse_error())
    kNotConnected,           // a message that needs a connection before INITIATE_CONTACT
    kOffersAlreadyRequested, // a second REQUESTOFFERS
    kUnknownChannel,         // a relid that names no offered channel
    kChannelRescinded,       // a request for a rescinded channel
    kChannelAlreadyOpen,
    kChannelNotOpen,
    kChannelNotRescinded,    // RELID_RELEASED for a channel not rescinded
    kDuplicateGpadl,         // a GPADL id already in use
    kTooManyGpadls,          // GPADL table or in-progress limit reached
    kGpadlTooLarge,          // beyond max_gpadl_words, or storage refused
    kGpadlMalformed,         // assembly failed (last_gpadl_error())
    kUnknownGpadl,           // a GPADL id (or relid + id) not known
    kGpadlIncomplete,        // a GPADL still receiving bodies
    kGpadlInUse,             // teardown of a GPADL an open channel's rings live in
    kBadRingGpadl,           // an open whose GPADL is not a ring layout
    kTableFull,              // add_offer() beyond kMaxOffers
    kUnknownOffer,           // rescind() of an offer that does not exist
    kPrimaryNotOpen,         // add_offer() of a sub-channel whose primary is not open
};
const char* server_error_name(ServerError error);

using OfferId = uint32_t;

struct ServerCounters {
    uint64_t messages = 0;
    uint64_t refused = 0;  // messages answered with a ServerError
};

class ChannelServer {
public:
    ChannelServer(ServerTransport& transport, GpadlStorage& storage, const ServerConfig& config = {});
    ~ChannelServer();
    ChannelServer(const ChannelServer&) = delete;
    ChannelServer& operator=(const ChannelServer&) = delete;

    // Registers a device. It is offered on the next REQUESTOFFERS, or at once if the guest has
    // asked already (a sub-channel: at once, or kPrimaryNotOpen). `device` must outlive the offer;
    // a sub-channel's device may be offered again once the primary reopens (the server never calls
    // a device for a rescinded channel).
    ServerError add_offer(const OfferInfo& info, ChannelDevice& device, OfferId& id);
    // Withdraws an offer: RESCIND_CHANNELOFFER if the guest was shown it (the relid stays taken
    // until the guest sends RELID_RELEASED), immediate removal otherwise.
    ServerError rescind(OfferId id);

    ServerError handle_message(const void* bytes, uint32_t size);
    ServerError handle(const protocol::GuestMessage& message);

    bool is_connected() const { return connected_; }
    uint32_t version() const { return version_; }
    uint32_t target_vcpu() const { return target_vcpu_; }
    // The relid an offer was given, or 0 if the guest has not been shown it.
    uint32_t relid_of(OfferId id) const;
    bool is_open(OfferId id) const;
    uint32_t gpadl_count() const;
    protocol::ParseError last_parse_error() const { return last_parse_error_; }
    protocol::GpadlError last_gpadl_error() const { return last_gpadl_error_; }
    const ServerCounters& counters() const { return counters_; }

private:
    enum class ChannelState : uint8_t { kFree, kRegistered, kOffered, kOpen, kRescinded };
    static constexpr uint32_t kNoPrimary = ~0u;
    struct Channel {
        ChannelState state = ChannelState::kFree;
        OfferInfo info;
        ChannelDevice* device = nullptr;
        uint32_t relid = 0;
        uint32_t ring_gpadl = 0;  // while open
        uint32_t primary = kNoPrimary;  // a sub-channel: index of its primary
    };
    struct Gpadl {
        bool used = false;
        uint32_t channel = 0;  // index into channels_
        uint32_t capacity = 0;
        uint64_t* words = nullptr;
        protocol::GpadlAssembler assembler;
    };

    ServerError dispatch(const protocol::GuestMessage& message);
    ServerError on_initiate_contact(const protocol::InitiateContact& message);
    ServerError on_request_offers();
    ServerError on_gpadl_header(const protocol::GpadlHeaderMessage& message);
    ServerError on_gpadl_body(const protocol::GpadlBodyMessage& message);
    ServerError on_gpadl_teardown(const protocol::GpadlTeardown& message);
    ServerError on_open_channel(const protocol::OpenChannel& message);
    ServerError on_close_channel(const protocol::CloseChannel& message);
    ServerError on_relid_released(const protocol::RelIdReleased& message);
    ServerError on_unload();

    void send_version_response(uint8_t supported, uint8_t state, uint32_t connection_id);
    void send_offer(uint32_t index);
    void send_gpadl_created(uint32_t relid, uint32_t gpadl, uint32_t status);
    ServerError refuse_gpadl(const protocol::GpadlHeader& header, ServerError error);
    ServerError finish_gpadl(Gpadl& gpadl, protocol::GpadlError error);
    ServerError check_ring_gpadl(const Gpadl& gpadl, uint32_t downstream_offset, RingGpadl& ring) const;
    void assign_relid(uint32_t index);
    void close_device(Channel& channel);
    bool find_open_primary(const OfferInfo& info, uint32_t& index) const;
    void withdraw_sub_channels(uint32_t primary);
    void close_primary(uint32_t index);
    void free_gpadl(Gpadl& gpadl);
    void free_channel_gpadls(uint32_t index);
    void disconnect();

    Channel* channel_by_relid(uint32_t relid, uint32_t& index);
    Gpadl* gpadl_by_id(uint32_t gpadl);
    Gpadl* unused_gpadl();
    uint32_t gpadls_in_progress() const;

    ServerTransport& transport_;
    GpadlStorage& storage_;
    ServerConfig config_;
    bool connected_ = false;
    bool offers_requested_ = false;
    uint32_t version_ = 0;
    uint32_t target_vcpu_ = 0;
    Channel channels_[kMaxOffers];
    Gpadl gpadls_[kMaxGpadls];
    protocol::ParseError last_parse_error_ = protocol::ParseError::kNone;
    protocol::GpadlError last_gpadl_error_ = protocol::GpadlError::kNone;
    ServerCounters counters_;
};

}  // namespace hvkvm::vmbus::channel
