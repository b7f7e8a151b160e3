// A ring in this process's memory for tests: a control page and `data_pages` data pages, zeroed,
// plus helpers that play a hostile peer by writing raw control fields and packet bytes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "vmbus/ring/ring_layout.h"
#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::test {

struct FreeDeleter {
    void operator()(void* pointer) const { std::free(pointer); }
};

class TestRing {
public:
    explicit TestRing(uint32_t data_pages)
        : bytes_((data_pages + 1) * ring::kDataPageSize),
          storage_(static_cast<uint8_t*>(std::aligned_alloc(ring::kDataPageSize, bytes_))),
          memory_(control_page(), data(), data_pages * ring::kDataPageSize) {
        std::memset(storage_.get(), 0, bytes_);
    }

    ring::ControlPage& control() { return *control_page(); }
    uint8_t* data() { return storage_.get() + ring::kControlPageSize; }
    uint32_t data_size() const { return memory_.data_size(); }
    ring::ContiguousRingMemory& memory() { return memory_; }

    // Raw access as the peer would have it (no validation, wraps at the end).
    void poke(uint32_t offset, const void* source, uint32_t size) {
        const auto* in = static_cast<const uint8_t*>(source);
        for (uint32_t i = 0; i < size; ++i) data()[(offset + i) % data_size()] = in[i];
    }
    void peek(uint32_t offset, void* destination, uint32_t size) {
        auto* out = static_cast<uint8_t*>(destination);
        for (uint32_t i = 0; i < size; ++i) out[i] = data()[(offset + i) % data_size()];
    }
    void poke_descriptor(uint32_t offset, uint16_t type, uint16_t offset8, uint16_t len8, uint16_t flags = 0,
                         uint64_t transaction_id = 0) {
        const ring::PacketDescriptor descriptor{type, offset8, len8, flags, transaction_id};
        poke(offset, &descriptor, sizeof(descriptor));
    }

private:
    ring::ControlPage* control_page() { return reinterpret_cast<ring::ControlPage*>(storage_.get()); }

    uint32_t bytes_;
    std::unique_ptr<uint8_t, FreeDeleter> storage_;
    ring::ContiguousRingMemory memory_;
};

inline std::vector<uint8_t> pattern(uint32_t size, uint32_t seed) {
    std::vector<uint8_t> bytes(size);
    for (uint32_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8));
    return bytes;
}

}  // namespace hvkvm::vmbus::test
