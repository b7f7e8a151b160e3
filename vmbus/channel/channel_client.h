// The guest side of VMBus channel management, transport-agnostic and freestanding: the
// counterpart of ChannelServer, as a guest's VMBus driver (Linux drivers/hv/connection.c,
// channel_mgmt.c) runs it. connect() negotiates the newest version the host accepts, falling back
// one at a time; once connected it requests offers and records them until ALLOFFERS_DELIVERED.
// GPADLs, open, close, relid release and unload are requests whose answers arrive through
// handle_message(); ClientEvents reports them.
//
// Every host message is hostile: one that does not answer an outstanding request or fit the
// current state is refused with a ClientError and changes nothing.
//
// Not thread-safe: the guest serializes calls (its VMBus message handler and the drivers' requests).
#pragma once

#include <stdint.h>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/protocol/gpadl.h"
#include "vmbus/protocol/message_codec.h"

namespace hvkvm::vmbus::channel {

inline constexpr uint32_t kClientMaxChannels = 64;
inline constexpr uint32_t kClientMaxGpadls = 64;
// Relids the client accepts: Linux sizes its relid table MAX_CHANNEL_RELIDS; OpenVMM assigns up to
// 2047.
inline constexpr uint32_t kMaxRelid = 2047;
// Linux numbers GPADLs from this value (connection.c next_gpadl_handle).
inline constexpr uint32_t kFirstGpadlId = 0xe1e10;

// Where the client's messages go: HvPostMessage to connection_id().
class ClientTransport {
public:
    virtual void send(uint32_t connection_id, const protocol::MessageBuffer& message) = 0;

protected:
    ~ClientTransport() = default;
};

// What the host answered. Default implementations ignore the event.
class ClientEvents {
public:
    virtual void connected(uint32_t /*version*/) {}
    virtual void connection_failed() {}
    virtual void offer(const protocol::OfferChannel& /*offer*/) {}
    virtual void all_offers_delivered() {}
    virtual void gpadl_created(uint32_t /*gpadl*/, uint32_t /*status*/) {}
    virtual void gpadl_torn_down(uint32_t /*gpadl*/) {}
    virtual void open_result(uint32_t /*relid*/, uint32_t /*status*/) {}
    virtual void rescinded(uint32_t /*relid*/) {}
    virtual void unloaded() {}

protected:
    ~ClientEvents() = default;
};

enum class ClientError : uint8_t {
    kNone,
    kParse,              // the bytes did not parse (last_parse_error())
    kUnexpected,         // a message that answers nothing outstanding, or comes in the wrong state
    kBadRelid,           // relid 0 or above kMaxRelid
    kDuplicateRelid,     // an offer for a relid already offered
    kUnknownChannel,     // a relid that names no offered channel
    kUnknownGpadl,       // a GPADL id with nothing outstanding
    kTableFull,          // channel or GPADL table full
    kBadRequest,         // the caller's request does not fit the state (not connected, not open...)
    kBadRanges,          // create_gpadl() with ranges that do not validate
};
const char* client_error_name(ClientError error);

struct ClientConfig {
    uint32_t max_version = protocol::kSupportedVersions[0];
    uint32_t target_vcpu = 0;
};

class ChannelClient {
public:
    ChannelClient(ClientTransport& transport, ClientEvents& events, const ClientConfig& config = {});

    // Starts version negotiation with the newest version <= max_version.
    ClientError connect();
    ClientError handle_message(const void* bytes, uint32_t size);
    ClientError handle(const protocol::HostMessage& message);

    // Requests, once connected and offers are delivered.
    ClientError create_gpadl(uint32_t relid, const GpaRangeList& ranges, uint32_t& gpadl);
    ClientError teardown_gpadl(uint32_t gpadl);
    ClientError open(uint32_t relid, uint32_t gpadl, uint32_t downstream_page_offset, uint32_t target_vp,
                     const uint8_t* user_data = nullptr);
    ClientError close(uint32_t relid);
    // After a rescind: tells the host the relid may be reused.
    ClientError release(uint32_t relid);
    ClientError unload();

    bool is_connected() const { return state_ == State::kConnected || state_ == State::kReady; }
    bool offers_complete() const { return state_ == State::kReady; }
    uint32_t version() const { return version_; }
    // Where messages go: 4 until a 5.0+ VERSION_RESPONSE names another, 1 for older versions.
    uint32_t connection_id() const { return connection_id_; }
    uint32_t channel_count() const;
    // The offer for a relid, or nullptr.
    const protocol::OfferChannel* offer(uint32_t relid) const;
    bool is_open(uint32_t relid) const;
    bool is_rescinded(uint32_t relid) const;
    protocol::ParseError last_parse_error() const { return last_parse_error_; }

private:
    enum class State : uint8_t { kDisconnected, kConnecting, kConnected, kReady, kUnloading, kFailed };
    enum class ChannelState : uint8_t { kFree, kOffered, kOpening, kOpen, kRescinded };
    enum class GpadlState : uint8_t { kFree, kCreating, kCreated, kTearingDown };
    struct Channel {
        ChannelState state = ChannelState::kFree;
        protocol::OfferChannel offer{};
        uint32_t open_id = 0;
    };
    struct Gpadl {
        GpadlState state = GpadlState::kFree;
        uint32_t id = 0;
        uint32_t relid = 0;
    };

    ClientError on_version_response(const protocol::VersionResponse& message);
    ClientError on_offer(const protocol::OfferChannel& message);
    ClientError on_all_offers_delivered();
    ClientError on_gpadl_created(const protocol::GpadlCreated& message);
    ClientError on_gpadl_torndown(const protocol::GpadlTorndown& message);
    ClientError on_open_result(const protocol::OpenResult& message);
    ClientError on_rescind(const protocol::RescindChannelOffer& message);
    ClientError on_unload_response();

    ClientError request_version(uint32_t first_index);
    void send(const protocol::MessageBuffer& message);
    void forget_everything();
    Channel* channel(uint32_t relid);
    const Channel* channel(uint32_t relid) const;
    Gpadl* gpadl(uint32_t id);

    ClientTransport& transport_;
    ClientEvents& events_;
    ClientConfig config_;
    State state_ = State::kDisconnected;
    uint32_t version_index_ = 0;  // into kSupportedVersions, while connecting
    uint32_t version_ = 0;
    uint32_t connection_id_ = protocol::kMessageConnectionId4;
    uint32_t next_gpadl_id_ = kFirstGpadlId;
    uint32_t next_open_id_ = 1;
    Channel channels_[kClientMaxChannels];
    Gpadl gpadls_[kClientMaxGpadls];
    protocol::ParseError last_parse_error_ = protocol::ParseError::kNone;
};

}  // namespace hvkvm::vmbus::channel
