// An SRB's data buffer in guest RAM, as host memory: the pages of its GPA range translated one by
// one (a page that is not guest RAM refuses the whole buffer, never faults) into iovecs, adjacent
// host pages merged, so that io_uring moves data straight between the disk and guest memory.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "services/storvsp/storvsp_protocol.h"
#include "storage/scsi/data_buffer.h"

namespace hvkvm::root::storvsp {

// Guest RAM by page: the host address of guest page `pfn`, or nullptr if it is not RAM.
class GuestPages {
public:
    virtual uint8_t* page(uint64_t pfn) const = 0;

protected:
    ~GuestPages() = default;
};

// The iovecs of [byte_offset, byte_offset + length) of the range's pages, appended to `segments`
// (cleared first). False if any page is not guest RAM.
bool map_data_range(const GuestPages& ram, const DataRange& range, std::vector<iovec>& segments);

// True when every segment starts and ends on `alignment` (O_DIRECT's requirement).
bool segments_aligned(const std::vector<iovec>& segments, uint32_t alignment);

// The first `bytes` of `segments` (a READ or WRITE moves the CDB's length, not the whole buffer).
uint32_t truncate_segments(std::vector<iovec>& segments, uint64_t bytes);

// The buffer as the SCSI target sees it.
class IovecBuffer final : public storage::scsi::DataBuffer {
public:
    IovecBuffer(const std::vector<iovec>& segments, uint32_t size) : segments_(segments), size_(size) {}
    uint32_t size() const override { return size_; }
    void copy_in(uint32_t offset, const void* source, uint32_t bytes) override;
    void copy_out(uint32_t offset, void* destination, uint32_t bytes) const override;

private:
    template <typename Copy>
    void for_each_piece(uint32_t offset, uint32_t bytes, Copy copy) const;

    const std::vector<iovec>& segments_;
    uint32_t size_;
};

}  // namespace hvkvm::root::storvsp
