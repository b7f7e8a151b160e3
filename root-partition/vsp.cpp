#include "vsp.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace hvkvm::root {

using vmbus::channel::OpenRequest;
using vmbus::protocol::kStatusSuccess;
using vmbus::protocol::kStatusUnsuccessful;

bool MappedRing::map(const vmm::GuestMemory& memory, const uint64_t* pfns, uint32_t page_count) {
    if (page_count < 2) return false;
    std::vector<uint8_t*> pages;
    for (uint32_t i = 0; i < page_count; ++i) {
        if (pfns[i] > (~0ull >> 12)) return false;
        auto page = memory.translate(pfns[i] << 12, 4096);
        if (!page) return false;
        pages.push_back(reinterpret_cast<uint8_t*>(page->data()));
    }
    auto* control = reinterpret_cast<vmbus::ring::ControlPage*>(pages[0]);
    data_pages_.assign(pages.begin() + 1, pages.end());
    const uint32_t data_pages = page_count - 1;
    bool contiguous = true;
    for (uint32_t i = 1; i < data_pages && contiguous; ++i) contiguous = data_pages_[i] == data_pages_[0] + 4096ull * i;
    contiguous_.reset();
    paged_.reset();
    if (contiguous) contiguous_.emplace(control, data_pages_[0], data_pages * 4096);
    else paged_.emplace(control, data_pages_.data(), data_pages);
    return true;
}

Vsp::~Vsp() { close(); }

uint32_t Vsp::open(const OpenRequest& request) {
    const auto& ring = request.ring;
    // The guest -> host ring first, then the host -> guest ring (Hyper-V's layout, checked by the server).
    if (!incoming_ring_.map(services_.memory, ring.pfns, ring.downstream_page_offset) ||
        !outgoing_ring_.map(services_.memory, ring.pfns + ring.downstream_page_offset,
                            ring.page_count - ring.downstream_page_offset)) {
        spdlog::warn("{}: refusing an open whose ring pages are not guest RAM", name());
        return kStatusUnsuccessful;
    }
    if (incoming_.attach(incoming_ring_.memory()) != vmbus::ring::RingError::kOk ||
        outgoing_.attach(outgoing_ring_.memory()) != vmbus::ring::RingError::kOk) {
        spdlog::warn("{}: refusing an open whose rings are malformed", name());
        return kStatusUnsuccessful;
    }
    relid_ = request.child_relid;
    target_vp_ = request.target_vp;
    try {
        guest_signal_ = services_.link.open_event_connection(services_.event_connection_id_base + relid_);
    } catch (const std::exception& error) {
        spdlog::warn("{}: no event connection for the channel: {}", name(), error.what());
        return kStatusUnsuccessful;
    }
    if (!on_open(request)) return kStatusUnsuccessful;
    open_ = true;
    failed_ = false;
    services_.loop.watch(guest_signal_.get(), [this] {
        drain_guest_eventfd();
        if (open_ && !failed_) on_guest_signal();
    });
    services_.link.report_channel(relid_, link::ChannelPhase::kOpen, target_vp_, name());
    on_guest_signal();  // packets sent before the open completed
    return kStatusSuccess;
}

void Vsp::close() {
    if (!open_) return;
    open_ = false;
    on_close();
    services_.loop.unwatch(guest_signal_.get());
    guest_signal_.reset();
    services_.link.report_channel(relid_, link::ChannelPhase::kClosed, target_vp_, name());
}

void Vsp::drain_guest_eventfd() {
    uint64_t count;
    [[maybe_unused]] ssize_t read_bytes = ::read(guest_signal_.get(), &count, sizeof count);
}

void Vsp::signal_guest() { services_.signals.signal(target_vp_, relid_); }

void Vsp::fail(const char* why) {
    if (failed_) return;
    failed_ = true;
    spdlog::warn("{} (relid {}): {}; the channel stops serving", name(), relid_, why);
}

}  // namespace hvkvm::root
