#include "host/crash_device.h"

#include <cstring>

namespace txfs::host {

RecordingDevice::RecordingDevice(std::vector<uint8_t> base, uint32_t sector)
    : base_(std::move(base)), sector_(sector), live_(base_), epochs_(1) {}

Status RecordingDevice::read(uint64_t offset, void* buffer, size_t length) {
    std::lock_guard guard(lock_);
    if (offset % sector_ || length % sector_ || offset > live_.size() || length > live_.size() - offset)
        return Status::kInvalidArgument;
    std::memcpy(buffer, live_.data() + offset, length);
    return Status::kOk;
}

Status RecordingDevice::write(uint64_t offset, const void* data, size_t length, WriteMode mode) {
    std::lock_guard guard(lock_);
    if (offset % sector_ || length % sector_ || offset > live_.size() || length > live_.size() - offset)
        return Status::kInvalidArgument;
    std::memcpy(live_.data() + offset, data, length);
    const auto* bytes = static_cast<const uint8_t*>(data);
    epochs_.back().push_back(RecordedWrite{offset, std::vector<uint8_t>(bytes, bytes + length), mode == WriteMode::kFua});
    return Status::kOk;
}

Status RecordingDevice::flush() {
    std::lock_guard guard(lock_);
    epochs_.emplace_back();
    return Status::kOk;
}

uint64_t RecordingDevice::flush_count() const {
    std::lock_guard guard(lock_);
    return epochs_.size() - 1;
}

std::vector<uint8_t> RecordingDevice::contents() const {
    std::lock_guard guard(lock_);
    return live_;
}

namespace {

void apply(std::vector<uint8_t>& image, const RecordedWrite& write) {
    std::memcpy(image.data() + write.offset, write.data.data(), write.data.size());
}

// Only the sectors whose bit is set in `keep` reach the disk.
void apply_torn(std::vector<uint8_t>& image, const RecordedWrite& write, uint32_t sector, const std::vector<bool>& keep) {
    for (size_t index = 0; index < keep.size(); ++index)
        if (keep[index])
            std::memcpy(image.data() + write.offset + index * sector, write.data.data() + index * sector, sector);
}

// A subset is possible only if every FUA write before the last kept write is kept.
bool respects_fua(const std::vector<RecordedWrite>& writes, const std::vector<bool>& kept) {
    size_t last_kept = 0;
    bool any = false;
    for (size_t i = 0; i < kept.size(); ++i)
        if (kept[i]) last_kept = i, any = true;
    if (!any) return true;
    for (size_t i = 0; i < last_kept; ++i)
        if (writes[i].fua && !kept[i]) return false;
    return true;
}

std::string describe_subset(size_t epoch, const std::vector<bool>& kept) {
    std::string text = "epoch " + std::to_string(epoch) + ", writes kept {";
    for (size_t i = 0; i < kept.size(); ++i)
        if (kept[i]) text += std::to_string(i) + ",";
    return text + "}";
}

}  // namespace

uint64_t enumerate_crash_states(const RecordingDevice& device, const CrashStateOptions& options, const CrashStateVisitor& visit) {
    std::mt19937_64 random(options.seed);
    std::vector<uint8_t> durable = device.base();
    std::vector<uint8_t> image;
    uint64_t visited = 0;
    const auto& epochs = device.epochs();
    const uint32_t sector = device.sector_size();
    for (size_t epoch = 0; epoch < epochs.size(); ++epoch) {
        const auto& writes = epochs[epoch];
        const size_t count = writes.size();
        std::vector<std::vector<bool>> subsets;
        if (count <= options.exhaustive_limit) {
            for (uint64_t mask = 0; mask < (uint64_t{1} << count); ++mask) {
                std::vector<bool> kept(count);
                for (size_t i = 0; i < count; ++i) kept[i] = (mask >> i) & 1;
                subsets.push_back(kept);
            }
        } else {
            for (size_t prefix = 0; prefix <= count; ++prefix) {  // crash after each write, in order
                std::vector<bool> kept(count, false);
                for (size_t i = 0; i < prefix; ++i) kept[i] = true;
                subsets.push_back(kept);
            }
            for (size_t omitted = 0; omitted < count; ++omitted) {
                std::vector<bool> all_but(count, true), only(count, false);
                all_but[omitted] = false;
                only[omitted] = true;
                subsets.push_back(all_but);
                subsets.push_back(only);
            }
            for (size_t n = 0; n < options.random_subsets; ++n) {
                std::vector<bool> kept(count);
                for (size_t i = 0; i < count; ++i) kept[i] = random() & 1;
                subsets.push_back(kept);
            }
        }
        for (const auto& kept : subsets) {
            if (!respects_fua(writes, kept)) continue;
            image = durable;
            for (size_t i = 0; i < count; ++i)
                if (kept[i]) apply(image, writes[i]);
            ++visited;
            if (!visit(image, epoch, describe_subset(epoch, kept))) return visited;
        }
        if (options.torn_writes) {
            // Each multi-sector write torn, with all writes issued before it persisted.
            for (size_t torn = 0; torn < count; ++torn) {
                const size_t sectors = writes[torn].data.size() / sector;
                if (sectors < 2) continue;
                std::vector<bool> keep(sectors);
                bool some = false, all = true;
                for (size_t s = 0; s < sectors; ++s) {
                    keep[s] = random() & 1;
                    some |= keep[s];
                    all &= keep[s];
                }
                if (!some) keep[0] = true;
                if (all) keep[sectors - 1] = false;
                image = durable;
                for (size_t i = 0; i < torn; ++i) apply(image, writes[i]);
                apply_torn(image, writes[torn], sector, keep);
                ++visited;
                if (!visit(image, epoch, "epoch " + std::to_string(epoch) + ", writes before " + std::to_string(torn) +
                                             " kept, write " + std::to_string(torn) + " torn"))
                    return visited;
            }
        }
        for (const auto& write : writes) apply(durable, write);
    }
    return visited;
}

void random_crash_state(const RecordingDevice& device, std::mt19937_64& random, std::vector<uint8_t>& image, size_t* epoch,
                        std::string* what) {
    const auto& epochs = device.epochs();
    const size_t chosen = random() % epochs.size();
    image = device.base();
    for (size_t e = 0; e < chosen; ++e)
        for (const auto& write : epochs[e]) apply(image, write);
    const auto& writes = epochs[chosen];
    std::vector<bool> kept(writes.size());
    for (size_t i = 0; i < writes.size(); ++i) kept[i] = random() & 1;
    for (size_t i = 0; i < writes.size(); ++i) {
        // Writes before the last kept FUA write must be kept (FUA writes completed in order).
        if (writes[i].fua && !kept[i])
            for (size_t later = i + 1; later < writes.size(); ++later) kept[later] = false;
    }
    size_t torn = writes.empty() ? 0 : random() % (writes.size() * 2);  // half the time nothing torn
    // A FUA write completed before any later write was issued: it can be torn only if it is the
    // last write that reached the disk.
    for (size_t later = torn + 1; torn < writes.size() && writes[torn].fua && later < writes.size(); ++later)
        if (kept[later]) torn = writes.size();
    for (size_t i = 0; i < writes.size(); ++i) {
        if (!kept[i]) continue;
        if (i == torn && writes[i].data.size() > device.sector_size()) {
            std::vector<bool> keep(writes[i].data.size() / device.sector_size());
            for (size_t s = 0; s < keep.size(); ++s) keep[s] = random() & 1;
            apply_torn(image, writes[i], device.sector_size(), keep);
        } else {
            apply(image, writes[i]);
        }
    }
    *epoch = chosen;
    *what = describe_subset(chosen, kept) + (torn < writes.size() && kept[torn] ? ", write " + std::to_string(torn) + " torn" : "");
}

}  // namespace txfs::host
