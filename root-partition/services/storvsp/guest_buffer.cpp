#include "services/storvsp/guest_buffer.h"

#include <algorithm>
#include <cstring>

namespace hvkvm::root::storvsp {

bool map_data_range(const GuestPages& ram, const DataRange& range, std::vector<iovec>& segments) {
    segments.clear();
    uint64_t remaining = range.length;
    uint32_t offset = range.byte_offset;
    for (uint32_t i = 0; i < range.pfn_count && remaining != 0; ++i) {
        uint8_t* page = ram.page(range.pfns[i]);
        if (page == nullptr) return false;
        const uint64_t piece = std::min<uint64_t>(remaining, vmbus::kHvPageSize - offset);
        uint8_t* start = page + offset;
        if (!segments.empty() && static_cast<uint8_t*>(segments.back().iov_base) + segments.back().iov_len == start)
            segments.back().iov_len += piece;
        else
            segments.push_back(iovec{start, piece});
        remaining -= piece;
        offset = 0;
    }
    return remaining == 0;
}

bool segments_aligned(const std::vector<iovec>& segments, uint32_t alignment) {
    for (const iovec& segment : segments) {
        if (reinterpret_cast<uintptr_t>(segment.iov_base) % alignment != 0 || segment.iov_len % alignment != 0) return false;
    }
    return true;
}

uint32_t truncate_segments(std::vector<iovec>& segments, uint64_t bytes) {
    uint32_t kept = 0;
    for (iovec& segment : segments) {
        if (bytes == 0) break;
        segment.iov_len = std::min<uint64_t>(segment.iov_len, bytes);
        bytes -= segment.iov_len;
        ++kept;
    }
    segments.resize(kept);
    return kept;
}

template <typename Copy>
void IovecBuffer::for_each_piece(uint32_t offset, uint32_t bytes, Copy copy) const {
    uint32_t done = 0;
    for (const iovec& segment : segments_) {
        if (bytes == 0) return;
        if (offset >= segment.iov_len) {
            offset -= static_cast<uint32_t>(segment.iov_len);
            continue;
        }
        const uint32_t piece = std::min<uint32_t>(bytes, static_cast<uint32_t>(segment.iov_len) - offset);
        copy(static_cast<uint8_t*>(segment.iov_base) + offset, done, piece);
        done += piece;
        bytes -= piece;
        offset = 0;
    }
}

void IovecBuffer::copy_in(uint32_t offset, const void* source, uint32_t bytes) {
    for_each_piece(offset, bytes, [source](uint8_t* guest, uint32_t done, uint32_t piece) {
        std::memcpy(guest, static_cast<const uint8_t*>(source) + done, piece);
    });
}

void IovecBuffer::copy_out(uint32_t offset, void* destination, uint32_t bytes) const {
    for_each_piece(offset, bytes, [destination](uint8_t* guest, uint32_t done, uint32_t piece) {
        std::memcpy(static_cast<uint8_t*>(destination) + done, guest, piece);
    });
}

}  // namespace hvkvm::root::storvsp
