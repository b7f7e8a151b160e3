#include "stats/kvm_stats.h"

#include <linux/kvm.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "kvm/kvm_error.h"
#include "kvm/kvm_uapi.h"

namespace hvkvm::vmm {
namespace {

void read_exact(int fd, void* buffer, size_t size, uint64_t offset, const char* what) {
    ssize_t got = ::pread(fd, buffer, size, static_cast<off_t>(offset));
    if (got < 0) throw_errno(what);
    if (static_cast<size_t>(got) != size) throw HostError(EIO, std::string(what) + ": short read");
}

}  // namespace

KvmStats::KvmStats(UniqueFd fd) : fd_(std::move(fd)) {
    kvm_stats_header header{};
    read_exact(fd_.get(), &header, sizeof header, 0, "KVM stats header");
    data_offset_ = header.data_offset;
    const size_t descriptor_size = sizeof(uapi::StatsDescriptor) + header.name_size;
    std::vector<uint8_t> table(descriptor_size * header.num_desc);
    read_exact(fd_.get(), table.data(), table.size(), header.desc_offset, "KVM stats descriptors");

    for (uint32_t i = 0; i < header.num_desc; ++i) {
        uapi::StatsDescriptor descriptor;
        std::memcpy(&descriptor, table.data() + i * descriptor_size, sizeof descriptor);
        const char* name = reinterpret_cast<const char*>(table.data() + i * descriptor_size + sizeof descriptor);
        value_count_ = std::max<size_t>(value_count_, descriptor.offset / 8 + descriptor.size);
        const bool cumulative = (descriptor.flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE;
        const bool plain_count = (descriptor.flags & KVM_STATS_UNIT_MASK) == KVM_STATS_UNIT_NONE;
        if (cumulative && plain_count && descriptor.size == 1)
            counters_.push_back({std::string(name, strnlen(name, header.name_size)), descriptor.offset / 8});
    }
}

std::vector<KvmStat> KvmStats::read_counters() const {
    std::vector<uint64_t> values(value_count_);
    read_exact(fd_.get(), values.data(), values.size() * sizeof(uint64_t), data_offset_, "KVM stats values");
    std::vector<KvmStat> result;
    result.reserve(counters_.size());
    for (const auto& counter : counters_) result.push_back({counter.name, values[counter.offset_in_values]});
    return result;
}

void accumulate(std::vector<KvmStat>& into, const std::vector<KvmStat>& from) {
    for (const auto& stat : from) {
        auto it = std::find_if(into.begin(), into.end(), [&](const KvmStat& s) { return s.name == stat.name; });
        if (it == into.end()) into.push_back(stat);
        else it->value += stat.value;
    }
}

}  // namespace hvkvm::vmm
