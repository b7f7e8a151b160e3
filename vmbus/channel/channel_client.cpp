#include "vmbus/channel/channel_client.h"

namespace hvkvm::vmbus::channel {

using namespace protocol;

namespace {

constexpr uint32_t kSupportedVersionCount = sizeof(kSupportedVersions) / sizeof(kSupportedVersions[0]);
// Connection ids are 24 bits (Linux `union hv_connection_id`).
constexpr uint32_t kMaxConnectionId = 0xffffff;

}  // namespace

const char* client_error_name(ClientError error) {
    switch (error) {
        case ClientError::kNone: return "none";
        case ClientError::kParse: return "message does not parse";
        case ClientError::kUnexpected: return "unexpected message";
        case ClientError::kBadRelid: return "bad relid";
        case ClientError::kDuplicateRelid: return "duplicate relid";
        case ClientError::kUnknownChannel: return "unknown channel";
        case ClientError::kUnknownGpadl: return "unknown GPADL";
        case ClientError::kTableFull: return "table full";
        case ClientError::kBadRequest: return "request does not fit the state";
        case ClientError::kBadRanges: return "GPADL ranges malformed";
    }
    return "unknown";
}

ChannelClient::ChannelClient(ClientTransport& transport, ClientEvents& events, const ClientConfig& config)
    : transport_(transport), events_(events), config_(config) {}

// --- Lookups -----------------------------------------------------------------------------------

ChannelClient::Channel* ChannelClient::channel(uint32_t relid) {
    for (Channel& entry : channels_) {
        if (entry.state != ChannelState::kFree && entry.offer.child_relid == relid) return &entry;
    }
    return nullptr;
}

const ChannelClient::Channel* ChannelClient::channel(uint32_t relid) const {
    return const_cast<ChannelClient*>(this)->channel(relid);
}

ChannelClient::Gpadl* ChannelClient::gpadl(uint32_t id) {
    for (Gpadl& entry : gpadls_) {
        if (entry.state != GpadlState::kFree && entry.id == id) return &entry;
    }
    return nullptr;
}

uint32_t ChannelClient::channel_count() const {
    uint32_t count = 0;
    for (const Channel& entry : channels_) count += entry.state != ChannelState::kFree;
    return count;
}

const OfferChannel* ChannelClient::offer(uint32_t relid) const {
    const Channel* entry = channel(relid);
    return entry == nullptr ? nullptr : &entry->offer;
}

bool ChannelClient::is_open(uint32_t relid) const {
    const Channel* entry = channel(relid);
    return entry != nullptr && entry->state == ChannelState::kOpen;
}

bool ChannelClient::is_rescinded(uint32_t relid) const {
    const Channel* entry = channel(relid);
    return entry != nullptr && entry->state == ChannelState::kRescinded;
}

void ChannelClient::send(const MessageBuffer& message) { transport_.send(connection_id_, message); }

// --- Connection --------------------------------------------------------------------------------

ClientError ChannelClient::connect() {
    if (state_ != State::kDisconnected && state_ != State::kFailed) return ClientError::kBadRequest;
    uint32_t first = 0;
    while (first < kSupportedVersionCount && kSupportedVersions[first] > config_.max_version) ++first;
    return request_version(first);
}

// Offers kSupportedVersions[index], newest first; past the oldest, the connection has failed.
ClientError ChannelClient::request_version(uint32_t index) {
    if (index >= kSupportedVersionCount) {
        state_ = State::kFailed;
        events_.connection_failed();
        return ClientError::kNone;
    }
    version_index_ = index;
    const uint32_t version = kSupportedVersions[index];
    InitiateContact contact{};
    contact.version_requested = version;
    contact.target_vcpu = config_.target_vcpu;
    // From 5.0 the host needs the message SINT here and the request goes to connection 4.
    contact.interrupt_page = version >= kVersionWin10_5_0 ? kVmbusMessageSint : 0;
    connection_id_ = version >= kVersionWin10_5_0 ? kMessageConnectionId4 : kMessageConnectionId;
    state_ = State::kConnecting;
    send(encode(contact));
    return ClientError::kNone;
}

ClientError ChannelClient::on_version_response(const VersionResponse& message) {
    if (state_ != State::kConnecting) return ClientError::kUnexpected;
    if (message.version_supported == 0) return request_version(version_index_ + 1);
    const uint32_t version = kSupportedVersions[version_index_];
    const bool wants_connection_id = version >= kVersionWin10_5_0;
    if (message.connection_state != kConnectionSuccessful ||
        (wants_connection_id && (message.message_connection_id == 0 || message.message_connection_id > kMaxConnectionId))) {
        state_ = State::kFailed;
        events_.connection_failed();
        return message.connection_state != kConnectionSuccessful ? ClientError::kNone : ClientError::kUnexpected;
    }
    version_ = version;
    connection_id_ = wants_connection_id ? message.message_connection_id : kMessageConnectionId;
    state_ = State::kConnected;
    events_.connected(version_);
    send(encode(RequestOffers{}));
    return ClientError::kNone;
}

ClientError ChannelClient::on_offer(const OfferChannel& message) {
    if (state_ != State::kConnected && state_ != State::kReady) return ClientError::kUnexpected;
    const uint32_t relid = message.child_relid;
    if (relid == 0 || relid > kMaxRelid) return ClientError::kBadRelid;
    if (channel(relid) != nullptr) return ClientError::kDuplicateRelid;
    for (Channel& entry : channels_) {
        if (entry.state != ChannelState::kFree) continue;
        entry.state = ChannelState::kOffered;
        entry.offer = message;
        entry.open_id = 0;
        events_.offer(entry.offer);
        return ClientError::kNone;
    }
    return ClientError::kTableFull;
}

ClientError ChannelClient::on_all_offers_delivered() {
    if (state_ != State::kConnected) return ClientError::kUnexpected;
    state_ = State::kReady;
    events_.all_offers_delivered();
    return ClientError::kNone;
}

// --- GPADLs ------------------------------------------------------------------------------------

ClientError ChannelClient::create_gpadl(uint32_t relid, const GpaRangeList& ranges, uint32_t& id) {
    const Channel* entry = channel(relid);
    if (!is_connected() || entry == nullptr || entry->state == ChannelState::kRescinded) return ClientError::kBadRequest;
    Gpadl* slot = nullptr;
    for (Gpadl& candidate : gpadls_) {
        if (candidate.state == GpadlState::kFree) {
            slot = &candidate;
            break;
        }
    }
    if (slot == nullptr) return ClientError::kTableFull;
    GpadlMessageSplitter splitter;
    if (splitter.start(relid, next_gpadl_id_, ranges) != GpadlError::kNone) return ClientError::kBadRanges;
    id = next_gpadl_id_++;
    *slot = Gpadl{GpadlState::kCreating, id, relid};
    MessageBuffer message;
    while (splitter.next(message)) send(message);
    return ClientError::kNone;
}

ClientError ChannelClient::on_gpadl_created(const GpadlCreated& message) {
    Gpadl* entry = gpadl(message.gpadl);
    if (entry == nullptr || entry->state != GpadlState::kCreating || entry->relid != message.child_relid) {
        return ClientError::kUnknownGpadl;
    }
    entry->state = message.creation_status == kStatusSuccess ? GpadlState::kCreated : GpadlState::kFree;
    events_.gpadl_created(message.gpadl, message.creation_status);
    return ClientError::kNone;
}

ClientError ChannelClient::teardown_gpadl(uint32_t id) {
    Gpadl* entry = gpadl(id);
    if (!is_connected() || entry == nullptr || entry->state != GpadlState::kCreated) return ClientError::kBadRequest;
    entry->state = GpadlState::kTearingDown;
    send(encode(GpadlTeardown{{}, entry->relid, id}));
    return ClientError::kNone;
}

ClientError ChannelClient::on_gpadl_torndown(const GpadlTorndown& message) {
    Gpadl* entry = gpadl(message.gpadl);
    if (entry == nullptr || entry->state != GpadlState::kTearingDown) return ClientError::kUnknownGpadl;
    *entry = Gpadl{};
    events_.gpadl_torn_down(message.gpadl);
    return ClientError::kNone;
}

// --- Open, close, rescind ----------------------------------------------------------------------

ClientError ChannelClient::open(uint32_t relid, uint32_t gpadl_id, uint32_t downstream_page_offset,
                                uint32_t target_vp, const uint8_t* user_data) {
    Channel* entry = channel(relid);
    const Gpadl* ring = gpadl(gpadl_id);
    if (!is_connected() || entry == nullptr || entry->state != ChannelState::kOffered || ring == nullptr ||
        ring->state != GpadlState::kCreated || ring->relid != relid) {
        return ClientError::kBadRequest;
    }
    OpenChannel message{};
    message.child_relid = relid;
    message.open_id = next_open_id_++;
    message.ring_buffer_gpadl = gpadl_id;
    message.target_vp = target_vp;
    message.downstream_ring_page_offset = downstream_page_offset;
    if (user_data != nullptr) __builtin_memcpy(message.user_data, user_data, kUserDefinedBytes);
    entry->state = ChannelState::kOpening;
    entry->open_id = message.open_id;
    send(encode(message));
    return ClientError::kNone;
}

ClientError ChannelClient::on_open_result(const OpenResult& message) {
    Channel* entry = channel(message.child_relid);
    if (entry == nullptr) return ClientError::kUnknownChannel;
    if (entry->state != ChannelState::kOpening || entry->open_id != message.open_id) return ClientError::kUnexpected;
    entry->state = message.status == kStatusSuccess ? ChannelState::kOpen : ChannelState::kOffered;
    events_.open_result(message.child_relid, message.status);
    return ClientError::kNone;
}

ClientError ChannelClient::close(uint32_t relid) {
    Channel* entry = channel(relid);
    if (!is_connected() || entry == nullptr || entry->state != ChannelState::kOpen) return ClientError::kBadRequest;
    entry->state = ChannelState::kOffered;
    send(encode(CloseChannel{{}, relid}));
    return ClientError::kNone;
}

ClientError ChannelClient::on_rescind(const RescindChannelOffer& message) {
    if (!is_connected()) return ClientError::kUnexpected;
    Channel* entry = channel(message.child_relid);
    if (entry == nullptr || entry->state == ChannelState::kRescinded) return ClientError::kUnknownChannel;
    entry->state = ChannelState::kRescinded;
    events_.rescinded(message.child_relid);
    return ClientError::kNone;
}

ClientError ChannelClient::release(uint32_t relid) {
    Channel* entry = channel(relid);
    if (!is_connected() || entry == nullptr || entry->state != ChannelState::kRescinded) return ClientError::kBadRequest;
    *entry = Channel{};
    for (Gpadl& ring : gpadls_) {
        if (ring.state != GpadlState::kFree && ring.relid == relid) ring = Gpadl{};
    }
    send(encode(RelIdReleased{{}, relid}));
    return ClientError::kNone;
}

// --- Unload ------------------------------------------------------------------------------------

ClientError ChannelClient::unload() {
    if (!is_connected()) return ClientError::kBadRequest;
    state_ = State::kUnloading;
    send(encode(Unload{}));
    return ClientError::kNone;
}

ClientError ChannelClient::on_unload_response() {
    if (state_ != State::kUnloading) return ClientError::kUnexpected;
    forget_everything();
    events_.unloaded();
    return ClientError::kNone;
}

void ChannelClient::forget_everything() {
    for (Channel& entry : channels_) entry = Channel{};
    for (Gpadl& entry : gpadls_) entry = Gpadl{};
    state_ = State::kDisconnected;
    version_ = 0;
    connection_id_ = kMessageConnectionId4;
}

// --- Dispatch ----------------------------------------------------------------------------------

ClientError ChannelClient::handle_message(const void* bytes, uint32_t size) {
    HostMessage message;
    last_parse_error_ = parse_host_message(bytes, size, message);
    if (last_parse_error_ != ParseError::kNone) return ClientError::kParse;
    return handle(message);
}

ClientError ChannelClient::handle(const HostMessage& message) {
    switch (message.type) {
        case MessageType::kVersionResponse: return on_version_response(message.version_response);
        case MessageType::kOfferChannel: return on_offer(message.offer_channel);
        case MessageType::kAllOffersDelivered: return on_all_offers_delivered();
        case MessageType::kGpadlCreated: return on_gpadl_created(message.gpadl_created);
        case MessageType::kGpadlTorndown: return on_gpadl_torndown(message.gpadl_torndown);
        case MessageType::kOpenChannelResult: return on_open_result(message.open_result);
        case MessageType::kRescindChannelOffer: return on_rescind(message.rescind_channel_offer);
        case MessageType::kUnloadResponse: return on_unload_response();
        default: return ClientError::kParse;
    }
}

}  // namespace hvkvm::vmbus::channel
