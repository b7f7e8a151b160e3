// The memory a ring lives in, behind a small interface so the same ring code runs on a ring in
// this address space (the guest's own rings, tests, benchmarks) and on a ring in guest RAM that a
// root-partition process maps page by page from a GPADL (as OpenVMM's RingMem does).
//
// The ring code never touches the data area directly: it asks for copies that never cross the end
// of the data area (it splits wrapped copies itself), so no double mapping is needed.
#pragma once

#include <stdint.h>

#include "vmbus/ring/ring_layout.h"

namespace hvkvm::vmbus::ring {

class RingMemory {
public:
    // The shared control page. The ring accesses its fields only with __atomic builtins.
    virtual ControlPage* control() = 0;
    // Bytes in the data area: a multiple of 4096 in [kMinDataSize, kMaxDataSize].
    virtual uint32_t data_size() const = 0;
    // Copy [offset, offset + size) of the data area out / in. The ring guarantees
    // offset + size <= data_size().
    virtual void read(uint32_t offset, void* destination, uint32_t size) const = 0;
    virtual void write(uint32_t offset, const void* source, uint32_t size) = 0;

protected:
    ~RingMemory() = default;
};

// A control page and a virtually contiguous data area.
class ContiguousRingMemory final : public RingMemory {
public:
    ContiguousRingMemory(ControlPage* control, uint8_t* data, uint32_t data_size)
        : control_(control), data_(data), data_size_(data_size) {}

    ControlPage* control() override { return control_; }
    uint32_t data_size() const override { return data_size_; }
    void read(uint32_t offset, void* destination, uint32_t size) const override;
    void write(uint32_t offset, const void* source, uint32_t size) override;

private:
    ControlPage* control_;
    uint8_t* data_;
    uint32_t data_size_;
};

// A control page and data pages that need not be adjacent: how a host sees a ring named by a
// GPADL's PFN list. `pages` (owned by the caller, outliving this object) holds one pointer per
// 4 KiB data page.
class PagedRingMemory final : public RingMemory {
public:
    PagedRingMemory(ControlPage* control, uint8_t* const* pages, uint32_t page_count)
        : control_(control), pages_(pages), page_count_(page_count) {}

    ControlPage* control() override { return control_; }
    uint32_t data_size() const override { return page_count_ * kDataPageSize; }
    void read(uint32_t offset, void* destination, uint32_t size) const override;
    void write(uint32_t offset, const void* source, uint32_t size) override;

private:
    template <typename Copy>
    void for_each_page_piece(uint32_t offset, uint32_t size, Copy copy) const;

    ControlPage* control_;
    uint8_t* const* pages_;
    uint32_t page_count_;
};

}  // namespace hvkvm::vmbus::ring
