#include "vmbus/channel/channel_server.h"

namespace hvkvm::vmbus::channel {

using namespace protocol;

const char* server_error_name(ServerError error) {
    switch (error) {
        case ServerError::kNone: return "none";
        case ServerError::kParse: return "message does not parse";
        case ServerError::kNotConnected: return "not connected";
        case ServerError::kOffersAlreadyRequested: return "offers already requested";
        case ServerError::kUnknownChannel: return "unknown channel";
        case ServerError::kChannelRescinded: return "channel rescinded";
        case ServerError::kChannelAlreadyOpen: return "channel already open";
        case ServerError::kChannelNotOpen: return "channel not open";
        case ServerError::kChannelNotRescinded: return "channel not rescinded";
        case ServerError::kDuplicateGpadl: return "duplicate GPADL id";
        case ServerError::kTooManyGpadls: return "too many GPADLs";
        case ServerError::kGpadlTooLarge: return "GPADL too large";
        case ServerError::kGpadlMalformed: return "GPADL malformed";
        case ServerError::kUnknownGpadl: return "unknown GPADL";
        case ServerError::kGpadlIncomplete: return "GPADL incomplete";
        case ServerError::kGpadlInUse: return "GPADL in use by an open channel";
        case ServerError::kBadRingGpadl: return "GPADL is not a ring layout";
        case ServerError::kTableFull: return "offer table full";
        case ServerError::kUnknownOffer: return "unknown offer";
        case ServerError::kPrimaryNotOpen: return "sub-channel without an open primary";
    }
    return "unknown";
}

ChannelServer::ChannelServer(ServerTransport& transport, GpadlStorage& storage, const ServerConfig& config)
    : transport_(transport), storage_(storage), config_(config) {
    if (config_.max_gpadl_words > kGpadlMaxWords) config_.max_gpadl_words = kGpadlMaxWords;
}

ChannelServer::~ChannelServer() {
    for (Gpadl& gpadl : gpadls_) free_gpadl(gpadl);
}

// --- Lookups -----------------------------------------------------------------------------------

ChannelServer::Channel* ChannelServer::channel_by_relid(uint32_t relid, uint32_t& index) {
    if (relid == 0) return nullptr;
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        const ChannelState state = channels_[i].state;
        if (channels_[i].relid == relid && state != ChannelState::kFree && state != ChannelState::kRegistered) {
            index = i;
            return &channels_[i];
        }
    }
    return nullptr;
}

ChannelServer::Gpadl* ChannelServer::gpadl_by_id(uint32_t id) {
    for (Gpadl& gpadl : gpadls_) {
        if (gpadl.used && gpadl.assembler.gpadl() == id) return &gpadl;
    }
    return nullptr;
}

ChannelServer::Gpadl* ChannelServer::unused_gpadl() {
    for (Gpadl& gpadl : gpadls_) {
        if (!gpadl.used) return &gpadl;
    }
    return nullptr;
}

uint32_t ChannelServer::gpadls_in_progress() const {
    uint32_t count = 0;
    for (const Gpadl& gpadl : gpadls_) count += gpadl.used && gpadl.assembler.is_in_progress();
    return count;
}

uint32_t ChannelServer::gpadl_count() const {
    uint32_t count = 0;
    for (const Gpadl& gpadl : gpadls_) count += gpadl.used;
    return count;
}

uint32_t ChannelServer::relid_of(OfferId id) const {
    if (id >= kMaxOffers) return 0;
    const ChannelState state = channels_[id].state;
    return state == ChannelState::kFree || state == ChannelState::kRegistered ? 0 : channels_[id].relid;
}

bool ChannelServer::is_open(OfferId id) const { return id < kMaxOffers && channels_[id].state == ChannelState::kOpen; }

// --- Offers (host side API) --------------------------------------------------------------------

ServerError ChannelServer::add_offer(const OfferInfo& info, ChannelDevice& device, OfferId& id) {
    uint32_t primary = kNoPrimary;
    if (info.sub_channel_index != 0 && !find_open_primary(info, primary)) return ServerError::kPrimaryNotOpen;
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        if (channels_[i].state != ChannelState::kFree) continue;
        channels_[i] = Channel{};
        channels_[i].state = ChannelState::kRegistered;
        channels_[i].info = info;
        channels_[i].device = &device;
        channels_[i].primary = primary;
        id = i;
        if (connected_ && offers_requested_) send_offer(i);
        return ServerError::kNone;
    }
    return ServerError::kTableFull;
}

// An open primary is shown to the guest, so a sub-channel of it is offered at once.
bool ChannelServer::find_open_primary(const OfferInfo& info, uint32_t& index) const {
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        const Channel& candidate = channels_[i];
        if (candidate.state == ChannelState::kOpen && candidate.primary == kNoPrimary &&
            candidate.info.sub_channel_index == 0 && candidate.info.interface_type == info.interface_type &&
            candidate.info.interface_instance == info.interface_instance) {
            index = i;
            return true;
        }
    }
    return false;
}

// The primary at `primary` is no longer open: its sub-channels close and are rescinded (their
// relids stay taken until the guest releases them, as any rescinded channel's).
void ChannelServer::withdraw_sub_channels(uint32_t primary) {
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        Channel& channel = channels_[i];
        if (channel.primary != primary || channel.state == ChannelState::kFree || channel.state == ChannelState::kRescinded)
            continue;
        if (channel.state == ChannelState::kOpen) close_device(channel);
        channel.state = ChannelState::kRescinded;
        transport_.send(encode(RescindChannelOffer{{}, channel.relid}));
    }
}

// Sub-channels first, as OpenVMM does: nothing runs on them once their primary is gone.
void ChannelServer::close_primary(uint32_t index) {
    withdraw_sub_channels(index);
    close_device(channels_[index]);
}

ServerError ChannelServer::rescind(OfferId id) {
    if (id >= kMaxOffers || channels_[id].state == ChannelState::kFree) return ServerError::kUnknownOffer;
    Channel& channel = channels_[id];
    switch (channel.state) {
        case ChannelState::kRegistered: channel = Channel{}; return ServerError::kNone;
        case ChannelState::kRescinded: return ServerError::kNone;
        case ChannelState::kOpen: close_primary(id); [[fallthrough]];
        case ChannelState::kOffered: break;
        case ChannelState::kFree: return ServerError::kUnknownOffer;
    }
    channel.state = ChannelState::kRescinded;
    transport_.send(encode(RescindChannelOffer{{}, channel.relid}));
    return ServerError::kNone;
}

// The lowest relid no channel holds (a rescinded channel keeps its relid until released).
void ChannelServer::assign_relid(uint32_t index) {
    for (uint32_t relid = 1;; ++relid) {
        uint32_t holder = 0;
        if (channel_by_relid(relid, holder) == nullptr) {
            channels_[index].relid = relid;
            return;
        }
    }
}

void ChannelServer::send_offer(uint32_t index) {
    assign_relid(index);
    Channel& channel = channels_[index];
    channel.state = ChannelState::kOffered;
    OfferChannel offer{};
    offer.interface_type = channel.info.interface_type;
    offer.interface_instance = channel.info.interface_instance;
    offer.flags = channel.info.flags;
    offer.mmio_megabytes = channel.info.mmio_megabytes;
    __builtin_memcpy(offer.user_defined, channel.info.user_defined, kUserDefinedBytes);
    offer.sub_channel_index = channel.info.sub_channel_index;
    offer.child_relid = channel.relid;
    // No monitored notification: the guest signals with HvSignalEvent on a dedicated connection.
    offer.monitor_id = kNoMonitorId;
    offer.monitor_flags = 0;
    offer.interrupt_flags = kDedicatedInterrupt;
    offer.connection_id = config_.event_connection_id_base + channel.relid;
    transport_.send(encode(offer));
}

// --- Messages ----------------------------------------------------------------------------------

ServerError ChannelServer::handle_message(const void* bytes, uint32_t size) {
    GuestMessage message;
    last_parse_error_ = parse_guest_message(bytes, size, message);
    if (last_parse_error_ != ParseError::kNone) {
        ++counters_.messages;
        ++counters_.refused;
        return ServerError::kParse;
    }
    return handle(message);
}

ServerError ChannelServer::handle(const GuestMessage& message) {
    ++counters_.messages;
    const ServerError error = dispatch(message);
    if (error != ServerError::kNone) ++counters_.refused;
    return error;
}

ServerError ChannelServer::dispatch(const GuestMessage& message) {
    if (message.type == MessageType::kInitiateContact) return on_initiate_contact(message.initiate_contact);
    if (!connected_) return ServerError::kNotConnected;
    switch (message.type) {
        case MessageType::kRequestOffers: return on_request_offers();
        case MessageType::kGpadlHeader: return on_gpadl_header(message.gpadl_header);
        case MessageType::kGpadlBody: return on_gpadl_body(message.gpadl_body);
        case MessageType::kGpadlTeardown: return on_gpadl_teardown(message.gpadl_teardown);
        case MessageType::kOpenChannel: return on_open_channel(message.open_channel);
        case MessageType::kCloseChannel: return on_close_channel(message.close_channel);
        case MessageType::kRelIdReleased: return on_relid_released(message.relid_released);
        case MessageType::kUnload: return on_unload();
        default: return ServerError::kParse;  // parse_guest_message() returns no other type
    }
}

void ChannelServer::send_version_response(uint8_t supported, uint8_t state, uint32_t connection_id) {
    transport_.send(encode(VersionResponse{{}, supported, state, 0, connection_id}));
}

// Version negotiation (OpenVMM channels.rs, Linux connection.c): an unsupported version, or a
// 5.0+ request naming another message SINT, is answered with version_supported = 0 and the guest
// retries with an older one; monitor pages must be given both or neither. A guest that connects
// again while connected starts over, as after an unload.
ServerError ChannelServer::on_initiate_contact(const InitiateContact& message) {
    if (connected_) disconnect();
    const uint32_t version = message.version_requested;
    const bool sint_ok =
        version < kVersionWin10_5_0 || static_cast<uint8_t>(message.interrupt_page) == kVmbusMessageSint;
    if (!is_supported_version(version) || !sint_ok) {
        send_version_response(0, kConnectionSuccessful, 0);
        return ServerError::kNone;
    }
    if ((message.monitor_page1 == 0) != (message.monitor_page2 == 0)) {
        send_version_response(1, kConnectionFailedUnknownFailure, 0);
        return ServerError::kNone;
    }
    connected_ = true;
    offers_requested_ = false;
    version_ = version;
    // Before Win8.1 messages always went to VP 0.
    target_vcpu_ = version >= kVersionWin8_1 ? message.target_vcpu : 0;
    send_version_response(1, kConnectionSuccessful,
                          version >= kVersionWin10_5_0 ? config_.message_connection_id : version);
    return ServerError::kNone;
}

ServerError ChannelServer::on_request_offers() {
    if (offers_requested_) return ServerError::kOffersAlreadyRequested;
    offers_requested_ = true;
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        if (channels_[i].state == ChannelState::kRegistered) send_offer(i);
    }
    transport_.send(encode(AllOffersDelivered{}));
    return ServerError::kNone;
}

void ChannelServer::send_gpadl_created(uint32_t relid, uint32_t gpadl, uint32_t status) {
    transport_.send(encode(GpadlCreated{{}, relid, gpadl, status}));
}

ServerError ChannelServer::refuse_gpadl(const GpadlHeader& header, ServerError error) {
    send_gpadl_created(header.child_relid, header.gpadl, kStatusUnsuccessful);
    return error;
}

ServerError ChannelServer::on_gpadl_header(const GpadlHeaderMessage& message) {
    const GpadlHeader& header = message.fixed;
    uint32_t index = 0;
    Channel* channel = channel_by_relid(header.child_relid, index);
    if (channel == nullptr) return refuse_gpadl(header, ServerError::kUnknownChannel);
    if (channel->state == ChannelState::kRescinded) return refuse_gpadl(header, ServerError::kChannelRescinded);
    // GPADL ids are the guest's, one namespace per connection: a body names only the id.
    if (gpadl_by_id(header.gpadl) != nullptr) return refuse_gpadl(header, ServerError::kDuplicateGpadl);
    if (gpadls_in_progress() >= kMaxGpadlsInProgress) return refuse_gpadl(header, ServerError::kTooManyGpadls);
    Gpadl* gpadl = unused_gpadl();
    if (gpadl == nullptr) return refuse_gpadl(header, ServerError::kTooManyGpadls);
    const uint32_t words = GpadlAssembler::words_needed(message);
    if (words > config_.max_gpadl_words) return refuse_gpadl(header, ServerError::kGpadlTooLarge);
    uint64_t* storage = storage_.allocate(words);
    if (storage == nullptr) return refuse_gpadl(header, ServerError::kGpadlTooLarge);
    gpadl->used = true;
    gpadl->channel = index;
    gpadl->capacity = words;
    gpadl->words = storage;
    return finish_gpadl(*gpadl, gpadl->assembler.start(message, storage, words));
}

ServerError ChannelServer::on_gpadl_body(const GpadlBodyMessage& message) {
    Gpadl* gpadl = gpadl_by_id(message.fixed.gpadl);
    // Without a GPADL in progress there is no channel to answer on.
    if (gpadl == nullptr) return ServerError::kUnknownGpadl;
    if (!gpadl->assembler.is_in_progress()) return ServerError::kGpadlMalformed;
    return finish_gpadl(*gpadl, gpadl->assembler.add_body(message));
}

// After a header or body: report completion or failure to the guest.
ServerError ChannelServer::finish_gpadl(Gpadl& gpadl, GpadlError error) {
    const uint32_t relid = channels_[gpadl.channel].relid;
    const uint32_t id = gpadl.assembler.gpadl();
    if (error != GpadlError::kNone) {
        last_gpadl_error_ = error;
        free_gpadl(gpadl);
        send_gpadl_created(relid, id, kStatusUnsuccessful);
        return ServerError::kGpadlMalformed;
    }
    if (gpadl.assembler.is_complete()) send_gpadl_created(relid, id, kStatusSuccess);
    return ServerError::kNone;
}

ServerError ChannelServer::on_gpadl_teardown(const GpadlTeardown& message) {
    uint32_t index = 0;
    Channel* channel = channel_by_relid(message.child_relid, index);
    if (channel == nullptr) return ServerError::kUnknownChannel;
    Gpadl* gpadl = gpadl_by_id(message.gpadl);
    if (gpadl == nullptr || gpadl->channel != index) return ServerError::kUnknownGpadl;
    if (!gpadl->assembler.is_complete()) return ServerError::kGpadlIncomplete;
    if (channel->state == ChannelState::kOpen && channel->ring_gpadl == message.gpadl) return ServerError::kGpadlInUse;
    free_gpadl(*gpadl);
    transport_.send(encode(GpadlTorndown{{}, message.gpadl}));
    return ServerError::kNone;
}

ServerError ChannelServer::check_ring_gpadl(const Gpadl& gpadl, uint32_t downstream_offset, RingGpadl& ring) const {
    if (!gpadl.assembler.is_complete()) return ServerError::kGpadlIncomplete;
    const GpaRangeList ranges = gpadl.assembler.ranges();
    GpaRangeCursor cursor = ranges.cursor();
    GpaRange range;
    if (ranges.range_count != 1 || !cursor.next(range)) return ServerError::kBadRingGpadl;
    if (range.byte_offset != 0 || range.byte_count % kHvPageSize != 0) return ServerError::kBadRingGpadl;
    // Each ring: a control page and at least one data page.
    if (downstream_offset < 2 || downstream_offset > range.pfn_count || range.pfn_count - downstream_offset < 2) {
        return ServerError::kBadRingGpadl;
    }
    ring = RingGpadl{gpadl.assembler.gpadl(), range.pfns, range.pfn_count, downstream_offset};
    return ServerError::kNone;
}

ServerError ChannelServer::on_open_channel(const OpenChannel& message) {
    uint32_t index = 0;
    Channel* channel = channel_by_relid(message.child_relid, index);
    if (channel == nullptr) return ServerError::kUnknownChannel;
    // An open racing a rescind is dropped: the guest learns of the rescind instead (OpenVMM).
    if (channel->state == ChannelState::kRescinded) return ServerError::kChannelRescinded;
    if (channel->state == ChannelState::kOpen) return ServerError::kChannelAlreadyOpen;
    auto answer = [&](uint32_t status) {
        transport_.send(encode(OpenResult{{}, message.child_relid, message.open_id, status}));
    };
    const Gpadl* gpadl = gpadl_by_id(message.ring_buffer_gpadl);
    if (gpadl == nullptr || gpadl->channel != index) {
        answer(kStatusUnsuccessful);
        return ServerError::kUnknownGpadl;
    }
    OpenRequest request{};
    const ServerError layout = check_ring_gpadl(*gpadl, message.downstream_ring_page_offset, request.ring);
    if (layout != ServerError::kNone) {
        answer(kStatusUnsuccessful);
        return layout;
    }
    request.child_relid = message.child_relid;
    request.open_id = message.open_id;
    request.target_vp = message.target_vp;
    __builtin_memcpy(request.user_data, message.user_data, kUserDefinedBytes);
    const uint32_t status = channel->device->open(request);
    if (status == kStatusSuccess) {
        channel->state = ChannelState::kOpen;
        channel->ring_gpadl = message.ring_buffer_gpadl;
    }
    answer(status);
    return ServerError::kNone;
}

void ChannelServer::close_device(Channel& channel) {
    channel.device->close();
    channel.state = ChannelState::kOffered;
    channel.ring_gpadl = 0;
}

ServerError ChannelServer::on_close_channel(const CloseChannel& message) {
    uint32_t index = 0;
    Channel* channel = channel_by_relid(message.child_relid, index);
    if (channel == nullptr) return ServerError::kUnknownChannel;
    // The device of a rescinded channel was closed at the rescind; the guest's close is expected.
    if (channel->state == ChannelState::kRescinded) return ServerError::kNone;
    if (channel->state != ChannelState::kOpen) return ServerError::kChannelNotOpen;
    close_primary(index);
    return ServerError::kNone;
}

ServerError ChannelServer::on_relid_released(const RelIdReleased& message) {
    uint32_t index = 0;
    Channel* channel = channel_by_relid(message.child_relid, index);
    if (channel == nullptr) return ServerError::kUnknownChannel;
    if (channel->state != ChannelState::kRescinded) return ServerError::kChannelNotRescinded;
    free_channel_gpadls(index);
    *channel = Channel{};
    return ServerError::kNone;
}

ServerError ChannelServer::on_unload() {
    disconnect();
    transport_.send(encode(UnloadResponse{}));
    return ServerError::kNone;
}

// Back to the state before INITIATE_CONTACT: devices closed, GPADLs freed, relids forgotten;
// rescinded offers and sub-channels are gone, the others will be offered again.
void ChannelServer::disconnect() {
    for (uint32_t i = 0; i < kMaxOffers; ++i) {  // sub-channels first: they may follow their primary
        Channel& channel = channels_[i];
        if (channel.primary == kNoPrimary) continue;
        if (channel.state == ChannelState::kOpen) close_device(channel);
        channel = Channel{};
    }
    for (uint32_t i = 0; i < kMaxOffers; ++i) {
        Channel& channel = channels_[i];
        if (channel.state == ChannelState::kOpen) close_device(channel);
        if (channel.state == ChannelState::kRescinded) {
            channel = Channel{};
        } else if (channel.state == ChannelState::kOffered) {
            channel.state = ChannelState::kRegistered;
            channel.relid = 0;
        }
    }
    for (Gpadl& gpadl : gpadls_) free_gpadl(gpadl);
    connected_ = false;
    offers_requested_ = false;
    version_ = 0;
}

void ChannelServer::free_gpadl(Gpadl& gpadl) {
    if (!gpadl.used) return;
    storage_.release(gpadl.words, gpadl.capacity);
    gpadl = Gpadl{};
}

void ChannelServer::free_channel_gpadls(uint32_t index) {
    for (Gpadl& gpadl : gpadls_) {
        if (gpadl.used && gpadl.channel == index) free_gpadl(gpadl);
    }
}

}  // namespace hvkvm::vmbus::channel
