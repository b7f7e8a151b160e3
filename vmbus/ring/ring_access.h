// Internal to vmbus/ring: index arithmetic, wrap-aware copies and the control-page accesses shared
// by RingWriter and RingReader. Every control-page access goes through one of the functions at the
// bottom, each naming the ordering it provides and what it pairs with.
#pragma once

#include <stdint.h>

#include "vmbus/ring/ring_error.h"
#include "vmbus/ring/ring_layout.h"
#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::ring::detail {

// Bytes from `from` forward to `to` in a ring of `size` bytes (0 when equal).
constexpr uint32_t ring_distance(uint32_t from, uint32_t to, uint32_t size) {
    return to >= from ? to - from : size - from + to;
}

// `index` moved forward by `bytes` (< size), wrapping at `size`.
constexpr uint32_t ring_advance(uint32_t index, uint32_t bytes, uint32_t size) {
    const uint32_t moved = index + bytes;
    return moved >= size ? moved - size : moved;
}

constexpr bool is_valid_index(uint32_t index, uint32_t size) {
    return index < size && index % kPacketAlignment == 0;
}

inline RingError check_data_size(uint32_t size) {
    if (size < kMinDataSize || size > kMaxDataSize || size % kDataPageSize != 0) return RingError::kBadMemory;
    return RingError::kOk;
}

// Copies `size` (<= ring size) bytes starting at ring offset `offset`, splitting at the end of the
// data area. Empty copies touch nothing (the caller's pointer may then be null).
inline void copy_from_ring(const RingMemory& memory, uint32_t ring_size, uint32_t offset, void* destination,
                           uint32_t size) {
    if (size == 0) return;
    const uint32_t first = size < ring_size - offset ? size : ring_size - offset;
    memory.read(offset, destination, first);
    if (first < size) memory.read(0, static_cast<uint8_t*>(destination) + first, size - first);
}

inline void copy_to_ring(RingMemory& memory, uint32_t ring_size, uint32_t offset, const void* source,
                         uint32_t size) {
    if (size == 0) return;
    const uint32_t first = size < ring_size - offset ? size : ring_size - offset;
    memory.write(offset, source, first);
    if (first < size) memory.write(0, static_cast<const uint8_t*>(source) + first, size - first);
}

// --- Control page accesses -------------------------------------------------------------------
// The peer runs in another process on another CPU. Data-area bytes are plain copies; their
// visibility is ordered by the index accesses below (acquire/release pairs), and the signalling
// decisions use full fences, because each is a store followed by a load of a field the peer stores
// (Dekker's pattern): writer "store write_index; fence; load interrupt_mask, read_index" against
// reader "store interrupt_mask = 0; fence; load write_index", and reader "store read_index; fence;
// load pending_send_size, write_index" against writer "store pending_send_size; fence; load
// read_index". With a full fence on both sides at least one side sees the other's store, so a
// wake-up is never lost.

// Acquire: every packet byte the writer copied in before publishing this index is visible to the
// reads that follow. Pairs with publish_write_index().
inline uint32_t load_write_index(ControlPage* control) {
    return __atomic_load_n(&control->write_index, __ATOMIC_ACQUIRE);
}

// Release: the packet bytes copied in before are visible to a reader that loads this index.
inline void publish_write_index(ControlPage* control, uint32_t index) {
    __atomic_store_n(&control->write_index, index, __ATOMIC_RELEASE);
}

// Acquire: the reader finished copying the bytes it freed before the writer overwrites them.
// Pairs with publish_read_index().
inline uint32_t load_read_index(ControlPage* control) {
    return __atomic_load_n(&control->read_index, __ATOMIC_ACQUIRE);
}

// Release: every copy out of the packets being freed completes before the writer can see the space.
inline void publish_read_index(ControlPage* control, uint32_t index) {
    __atomic_store_n(&control->read_index, index, __ATOMIC_RELEASE);
}

// Hints with no data attached: relaxed, ordered by the full fence around them.
inline uint32_t load_hint(const uint32_t& field) { return __atomic_load_n(&field, __ATOMIC_RELAXED); }
inline void store_hint(uint32_t& field, uint32_t value) { __atomic_store_n(&field, value, __ATOMIC_RELAXED); }

// Store-load barrier for the signalling decisions described above.
inline void full_fence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

}  // namespace hvkvm::vmbus::ring::detail
