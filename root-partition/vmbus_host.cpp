#include "vmbus_host.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "hvkvm/abi/synic.h"

namespace hvkvm::root {

using vmbus::channel::ServerError;

VmbusHost::VmbusHost(VspServices& services, PartitionLink& link)
    : link_(link),
      server_(*this, *this, vmbus::channel::ServerConfig{}),
      rescinds_(services.loop, [this] { carry_out_rescinds(); }) {
    services.event_connection_id_base = vmbus::channel::ServerConfig{}.event_connection_id_base;
    services.offers = this;
}

VmbusHost::~VmbusHost() {
    for (Vsp* channel : sub_channels_) channel->close();
    for (Vsp* vsp : vsps_) vsp->close();
}

void VmbusHost::add(std::unique_ptr<Vsp> vsp) {
    add(*vsp);
    owned_.push_back(std::move(vsp));
}

void VmbusHost::add(Vsp& vsp) {
    vmbus::channel::OfferId id = 0;
    const ServerError error = server_.add_offer(vsp.offer(), vsp, id);
    if (error != ServerError::kNone)
        throw std::runtime_error(fmt::format("cannot offer {}: {}", vsp.name(), vmbus::channel::server_error_name(error)));
    offers_.push_back(Offer{id});
    vsps_.push_back(&vsp);
}

bool VmbusHost::offer_sub_channel(Vsp& channel) {
    vmbus::channel::OfferId id = 0;
    const ServerError error = server_.add_offer(channel.offer(), channel, id);
    if (error != ServerError::kNone) {
        spdlog::warn("cannot offer {} sub-channel {}: {}", channel.name(), channel.offer().sub_channel_index,
                     vmbus::channel::server_error_name(error));
        return false;
    }
    if (std::find(sub_channels_.begin(), sub_channels_.end(), &channel) == sub_channels_.end())
        sub_channels_.push_back(&channel);
    return true;
}

void VmbusHost::on_guest_message(const void* payload, uint32_t size) {
    const ServerError error = server_.handle_message(payload, size);
    if (error != ServerError::kNone)
        spdlog::debug("VMBus: refused a guest channel message: {}", vmbus::channel::server_error_name(error));
    offer_released_again();  // and reports the offers
}

void VmbusHost::rescind_and_offer_again(const Vsp& vsp) {
    for (size_t i = 0; i < vsps_.size(); ++i)
        if (vsps_[i] == &vsp && !offers_[i].awaiting_release) offers_[i].rescind_requested = true;
    rescinds_.arm_at(EventLoop::Clock::now());
}

void VmbusHost::carry_out_rescinds() {
    for (size_t i = 0; i < vsps_.size(); ++i) {
        Offer& offer = offers_[i];
        if (!offer.rescind_requested) continue;
        offer.rescind_requested = false;
        const uint32_t relid = server_.relid_of(offer.id);
        const ServerError error = server_.rescind(offer.id);
        if (error != ServerError::kNone) {
            spdlog::warn("{}: cannot rescind the offer: {}", vsps_[i]->name(), vmbus::channel::server_error_name(error));
            continue;
        }
        offer.awaiting_release = true;
        offer.reported_relid = 0;
        if (relid != 0) link_.report_channel(relid, link::ChannelPhase::kRescinded, 0, vsps_[i]->name());
    }
    offer_released_again();  // an offer the guest had not been shown is gone at once
}

// A rescinded offer whose relid the guest released (or that the guest unloaded) is offered again:
// at once if the guest has asked for offers, else on its next REQUESTOFFERS.
void VmbusHost::offer_released_again() {
    for (size_t i = 0; i < vsps_.size(); ++i) {
        Offer& offer = offers_[i];
        if (!offer.awaiting_release || server_.relid_of(offer.id) != 0) continue;
        offer.awaiting_release = false;
        const ServerError error = server_.add_offer(vsps_[i]->offer(), *vsps_[i], offer.id);
        if (error != ServerError::kNone)
            spdlog::warn("{}: cannot offer it again: {}", vsps_[i]->name(), vmbus::channel::server_error_name(error));
    }
    report_offers();
}

// Tells the VMM which channels the guest has been shown (relids are assigned when offered), once
// per offer (an unload takes the offers back; the next connection is shown them again).
void VmbusHost::report_offers() {
    for (size_t i = 0; i < vsps_.size(); ++i) {
        Offer& offer = offers_[i];
        const uint32_t relid = server_.relid_of(offer.id);
        if (relid == 0 || offer.awaiting_release) offer.reported_relid = 0;
        if (relid == 0 || offer.awaiting_release || relid == offer.reported_relid) continue;
        offer.reported_relid = relid;
        if (!vsps_[i]->is_open()) link_.report_channel(relid, link::ChannelPhase::kOffered, 0, vsps_[i]->name());
    }
}

void VmbusHost::control(const nlohmann::json& request, ControlReply reply) {
    const std::string command = request.value("command", "");
    if (command == "channels") {
        nlohmann::json channels = nlohmann::json::array();
        for (size_t i = 0; i < vsps_.size(); ++i) {
            nlohmann::json channel = {{"name", vsps_[i]->name()},
                                      {"relid", server_.relid_of(offers_[i].id)},
                                      {"open", vsps_[i]->is_open()}};
            if (vsps_[i]->is_open()) channel["target_vp"] = vsps_[i]->target_vp();
            if (nlohmann::json service = vsps_[i]->describe(); !service.empty()) channel["service"] = std::move(service);
            channels.push_back(std::move(channel));
        }
        for (Vsp* sub_channel : sub_channels_) {
            if (!sub_channel->is_open()) continue;
            channels.push_back({{"name", sub_channel->name()},
                                {"relid", sub_channel->relid()},
                                {"open", true},
                                {"sub_channel_index", sub_channel->offer().sub_channel_index},
                                {"target_vp", sub_channel->target_vp()}});
        }
        reply({{"ok", true}, {"connected", server_.is_connected()}, {"version", server_.version()}, {"channels", channels}});
        return;
    }
    for (Vsp* vsp : vsps_)
        if (vsp->control(request, reply)) return;
    reply({{"ok", false}, {"error", "unknown command \"" + command + "\""}});
}

void VmbusHost::send(const vmbus::protocol::MessageBuffer& message) {
    link_.post_message(server_.target_vcpu(), abi::synic::kVmbusSint, abi::synic::kMessageTypeVmbus,
                       {message.bytes, message.size});
}

uint64_t* VmbusHost::allocate(uint32_t words) {
    gpadl_words_ += words;
    return new (std::nothrow) uint64_t[words];
}

void VmbusHost::release(uint64_t* words, uint32_t count) {
    gpadl_words_ -= count;
    delete[] words;
}

}  // namespace hvkvm::root
