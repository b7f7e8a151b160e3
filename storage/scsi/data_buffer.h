// The data buffer of one SCSI command: guest memory the initiator handed over (storvsp builds it
// from the packet's page list), seen as bytes [0, size()). The target copies small responses
// (INQUIRY, MODE SENSE...) into it and reads small parameter lists (UNMAP) out of it; bulk
// READ/WRITE data never passes through here (it goes straight between the buffer's pages and
// the disk).
#pragma once

#include <cstdint>

namespace hvkvm::storage::scsi {

class DataBuffer {
public:
    virtual uint32_t size() const = 0;
    // Copy into the buffer (data in) / out of it (data out). The caller keeps offset + bytes within
    // size().
    virtual void copy_in(uint32_t offset, const void* source, uint32_t bytes) = 0;
    virtual void copy_out(uint32_t offset, void* destination, uint32_t bytes) const = 0;

protected:
    ~DataBuffer() = default;
};

// No buffer: a command without data.
class EmptyBuffer final : public DataBuffer {
public:
    uint32_t size() const override { return 0; }
    void copy_in(uint32_t, const void*, uint32_t) override {}
    void copy_out(uint32_t, void*, uint32_t) const override {}
};

}  // namespace hvkvm::storage::scsi
