// The requests in flight on one storvsc channel, found again by the transaction id their
// completion carries. Header-only and freestanding (atomics only), so the host's unit tests run
// the same code (tests/unit/test_storvsc_request_table.cpp).
//
// A transaction id is `sequence << kSlotBits | slot`, the sequence growing with every request:
// the id names the slot and the one request that used it. A completion is taken only if its id is
// exactly what its slot holds, and taking clears the slot (compare-and-exchange), so an id the
// guest never sent, a stale one (the slot's earlier request) and a second completion of the same
// request all find nothing: the host cannot complete what is not in flight, nor complete twice.
//
// Threads: claim() and cancel() for a slot come from its one submitter at a time (the block
// layer's tag, or the raw request's lock); take() from the channel's one reaper at a time. The
// request is written before the id is published (release) and read after it was matched
// (acquire), before the slot is cleared.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::storvsc {

template <typename Request, uint32_t kSlots>
class RequestTable {
public:
    static constexpr uint32_t kSlotBits = 16;
    static_assert(kSlots >= 1 && kSlots < (1u << kSlotBits));

    static constexpr uint64_t slot_of(uint64_t id) { return id & ((uint64_t{1} << kSlotBits) - 1); }

    // Records `request` in `slot` (which must be free) and returns the id to send it with.
    uint64_t claim(uint32_t slot, const Request& request) {
        slots_[slot].request = request;
        const uint64_t sequence = __atomic_fetch_add(&next_sequence_, 1, __ATOMIC_RELAXED);
        const uint64_t id = sequence << kSlotBits | slot;
        __atomic_store_n(&slots_[slot].id, id, __ATOMIC_RELEASE);
        return id;
    }

    // The completion's request, taken out of the table; false (and counted) if `id` names no
    // request in flight.
    bool take(uint64_t id, Request& request) {
        const uint64_t slot = slot_of(id);
        if (id == 0 || slot >= kSlots || __atomic_load_n(&slots_[slot].id, __ATOMIC_ACQUIRE) != id) return refuse();
        request = slots_[slot].request;
        uint64_t expected = id;
        if (!__atomic_compare_exchange_n(&slots_[slot].id, &expected, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return refuse();
        return true;
    }

    // Takes back a request whose completion will not come (never sent, given up on, the channel
    // gone); false if its completion took it first.
    bool cancel(uint32_t slot, uint64_t id, Request& request) {
        request = slots_[slot].request;
        uint64_t expected = id;
        return id != 0 && __atomic_compare_exchange_n(&slots_[slot].id, &expected, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    }

    // The id in flight in `slot`, 0 if it is free.
    uint64_t id_in(uint32_t slot) const { return __atomic_load_n(&slots_[slot].id, __ATOMIC_ACQUIRE); }

    // Completions that named nothing in flight.
    uint64_t refused() const { return __atomic_load_n(&refused_, __ATOMIC_RELAXED); }

private:
    bool refuse() {
        __atomic_fetch_add(&refused_, 1, __ATOMIC_RELAXED);
        return false;
    }

    struct Slot {
        uint64_t id = 0;  // 0: free
        Request request{};
    };
    Slot slots_[kSlots];
    uint64_t next_sequence_ = 1;
    uint64_t refused_ = 0;
};

}  // namespace hvkvm::guest::storvsc
