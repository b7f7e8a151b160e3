#include "services/storvsp/storvsp.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "services/storvsp/storvsp_channel.h"

namespace hvkvm::root {

namespace scsi = storage::scsi;

namespace {

// A stable identifier per disk id (FNV-1a), for VPD page 0x83.
uint64_t naa_of(const std::string& id) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (char c : id) hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
    return hash;
}

std::vector<scsi::LogicalUnit> units_of(const std::vector<StorvspDisk>& disks) {
    std::vector<scsi::LogicalUnit> units;
    units.reserve(disks.size());
    for (const StorvspDisk& disk : disks) {
        scsi::DiskProperties properties;
        properties.block_count = disk.size_bytes / scsi::kBlockSize;
        properties.read_only = disk.read_only;
        properties.max_transfer_bytes = Storvsp::kMaxTransferBytes;
        properties.serial = disk.id;
        properties.naa_id = naa_of(disk.id);
        units.emplace_back(std::move(properties));
    }
    return units;
}

std::vector<const scsi::LogicalUnit*> pointers_to(const std::vector<scsi::LogicalUnit>& units) {
    std::vector<const scsi::LogicalUnit*> pointers;
    for (const scsi::LogicalUnit& unit : units) pointers.push_back(&unit);
    return pointers;
}

storvsp::ControllerLimits limits_for(uint32_t vcpu_count) {
    storvsp::ControllerLimits limits;
    const uint32_t sub_channels = vcpu_count > 0 ? vcpu_count - 1 : 0;  // one channel per vCPU
    limits.max_sub_channels = static_cast<uint16_t>(std::min<uint32_t>(sub_channels, Storvsp::kMaxSubChannels));
    limits.max_transfer_bytes = Storvsp::kMaxTransferBytes;
    return limits;
}

}  // namespace

Storvsp::Storvsp(VspServices& services, std::vector<StorvspDisk> disks, storage::IoEngine& engine, uint32_t vcpu_count,
                 std::chrono::nanoseconds poll_window)
    : services_(services),
      engine_(engine),
      poll_window_(poll_window),
      units_(units_of(disks)),
      target_(pointers_to(units_)),
      empty_target_({}),
      session_(limits_for(vcpu_count)) {
    for (StorvspDisk& disk : disks) {
        const storage::DiskFault fault = disk.fault;
        disks_.push_back(Disk{std::move(disk), storage::FaultInjector(fault), {}});
    }
    channels_.push_back(std::make_unique<StorvspChannel>(services_, *this, 0, poll_window_));
    marked_.assign(1u + kMaxSubChannels, false);
    services_.loop.watch(engine_.completion_fd(), [this] { on_completions(); });
}

Storvsp::~Storvsp() {
    for (auto& channel : channels_) channel->close();
    services_.loop.unwatch(engine_.completion_fd());
}

Vsp& Storvsp::primary() { return *channels_.front(); }

StorvspChannel* Storvsp::channel(uint16_t index) const {
    return index < channels_.size() ? channels_[index].get() : nullptr;
}

const scsi::ScsiTarget& Storvsp::target_at(uint8_t path, uint8_t target, bool& exists) const {
    exists = path == 0 && target == 0;
    return exists ? target_ : empty_target_;
}

bool Storvsp::create_sub_channels(uint16_t count) {
    if (services_.offers == nullptr) return false;
    for (uint16_t index = static_cast<uint16_t>(offered_sub_channels_ + 1); index <= count; ++index) {
        if (channels_.size() <= index) channels_.push_back(std::make_unique<StorvspChannel>(services_, *this, index, poll_window_));
        if (!services_.offers->offer_sub_channel(*channels_[index])) return false;
        offered_sub_channels_ = index;
    }
    return true;
}

void Storvsp::primary_closed() {
    session_.reset();
    offered_sub_channels_ = 0;
}

// Completions wake the event loop through the ring's eventfd: record each in its request, then
// serve every channel that got some (one publish and at most one guest signal per channel).
// Completions that arrived meanwhile are taken in the same wake-up, a few rounds at most, so
// the loop neither goes back to sleep with work waiting nor starves the guests' signals. The
// first round serves even when it reaped nothing: drain() may have recorded completions and
// woken the loop for them.
void Storvsp::on_completions() {
    constexpr int kRounds = 4;
    for (int round = 0; round < kRounds; ++round) {
        const uint32_t reaped = engine_.reap([this](uint64_t tag, int32_t result) { dispatch(tag, result); });
        serve_marked();
        if (reaped == 0) break;
    }
}

void Storvsp::dispatch(uint64_t tag, int32_t result) {
    const auto index = static_cast<uint16_t>((tag >> 24) & 0xff);
    if (index >= channels_.size()) return;
    channels_[index]->io_done(static_cast<uint16_t>(tag & 0xffff), static_cast<uint8_t>(tag >> 16),
                              static_cast<uint32_t>(tag >> 32), result);
    marked_[index] = true;
}

// The channels that got completions, then those that waited for room in the ring (completions
// just made some).
void Storvsp::serve_marked() {
    for (size_t index = 0; index < channels_.size(); ++index) {
        if (!marked_[index]) continue;
        marked_[index] = false;
        channels_[index]->serve();
    }
    for (auto& channel : channels_) {
        if (channel->waiting_for_engine()) channel->serve();
    }
}

void Storvsp::drain(const StorvspChannel& channel) {
    bool reaped = false;
    while (channel.in_flight() != 0) {
        engine_.wait_for_completion();
        reaped |= engine_.reap([this](uint64_t tag, int32_t result) { dispatch(tag, result); }) != 0;
    }
    // The eventfd was consumed here: wake the loop so the other channels get served.
    if (reaped) engine_.wake();
}

nlohmann::json Storvsp::report() const {
    nlohmann::json disks = nlohmann::json::array();
    for (size_t lun = 0; lun < disks_.size(); ++lun) {
        const Disk& disk = disks_[lun];
        disks.push_back({{"id", disk.config.id},
                         {"lun", lun},
                         {"size_bytes", disk.config.size_bytes},
                         {"read_only", disk.config.read_only},
                         {"direct", disk.config.direct},
                         {"reads", disk.counters.reads},
                         {"writes", disk.counters.writes},
                         {"flushes", disk.counters.flushes},
                         {"unmaps", disk.counters.unmaps},
                         {"bytes_read", disk.counters.bytes_read},
                         {"bytes_written", disk.counters.bytes_written},
                         {"errors", disk.counters.errors},
                         {"faults_injected", disk.faults.injected()}});
    }
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& channel : channels_) {
        const ChannelCounters& c = channel->counters();
        channels.push_back({{"index", channel->index()},
                            {"open", channel->is_open()},
                            {"target_vp", channel->target_vp()},
                            {"requests", c.requests},
                            {"answers", c.answers},
                            {"io_srbs", c.io_srbs},
                            {"services", c.services},
                            {"guest_signals", c.guest_signals},
                            {"poll", {{"window_us", std::chrono::duration_cast<std::chrono::microseconds>(poll_window_).count()},
                                      {"hits", c.poll_hits},
                                      {"misses", c.poll_misses},
                                      {"skipped", c.poll_skipped}}},
                            {"dropped", c.dropped},
                            {"bad_page_lists", c.bad_page_lists},
                            {"misaligned", c.misaligned},
                            {"oversized_page_lists", c.oversized_page_lists},
                            {"ring_full", c.ring_full},
                            {"engine_full", c.engine_full},
                            {"max_in_flight", c.max_in_flight}});
    }
    const storage::IoEngineCounters& io = engine_.counters();
    return {{"state", storvsp::init_state_name(session_.state())},
            {"version", session_.version()},
            {"sub_channels", session_.sub_channels()},
            {"disks", disks},
            {"channels", channels},
            {"io", {{"submitted", io.submitted}, {"submit_calls", io.submit_calls}, {"completed", io.completed},
                    {"reap_batches", io.reap_batches}}}};
}

}  // namespace hvkvm::root
