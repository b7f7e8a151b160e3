// The guest's SynIC driver (hvkvm/abi/synic.h): each CPU's message page (SIMP, one 256-byte slot
// per SINT) and event-flag page (SIEFP, 2048 flags per SINT), every SINT a user attaches
// programmed on every CPU, and one claimed vector for all of them.
//
// On each interrupt the handler looks at every attached SINT of the interrupted CPU:
//   - messages: while the slot holds one, copy it out, free the slot (type None), full barrier,
//     and write EOM only if the host had set the slot's pending flag (it queued another message
//     and delivers it on EOM); then hand the copy to the SINT's owner. The host sets the pending
//     flag and then re-checks the slot, so with the barrier on this side either the host sees the
//     slot free or this side sees the flag: no message is stranded, and no EOM is wasted.
//   - event flags: every non-zero word of the SINT's flag array is exchanged with 0 atomically
//     (the host sets bits with an atomic OR and raises the SINT only when a bit was clear) and
//     each bit found is handed to the owner.
// One vector serves every SINT, so an interrupt may find nothing for a SINT (or at all: a re-raise,
// or a message already taken by the previous interrupt's loop). That is counted, never an error.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/synic.h"

namespace hvkvm::guest::synic {

using abi::synic::Message;

// What arrives on a SINT goes to its owner. Both calls run in interrupt context on the CPU whose
// page it arrived in, with interrupts disabled: they must not block (Event::set,
// Semaphore::signal and wake-ups are fine).
struct SintHandler {
    // A private copy of the message (payload_size clamped to 240); the slot is already free.
    void (*on_message)(void* context, const Message& message) = nullptr;
    // An event flag that was found set; it is clear again already.
    void (*on_event)(void* context, uint32_t flag) = nullptr;
    void* context = nullptr;
};

// Boot CPU, once every CPU is online: allocates and enables each CPU's pages and claims the
// vector. False (and the kernel does without SynIC) if the hypervisor does not offer it.
bool init();
bool available();
uint8_t vector();

// Hands `sint` to `handler` and unmasks it on every online CPU. False if SynIC is unavailable,
// the SINT is out of range or already attached.
bool attach(uint32_t sint, const SintHandler& handler);
// Masks `sint` on every CPU. When it returns no call of its handler is running or will start.
void detach(uint32_t sint);

// A CPU's flag array for `sint` (kEventFlagsPerSint bits as 64-bit words) and message slot: for
// tests that need to see or set what the host would.
uint64_t* event_flag_words(uint32_t cpu, uint32_t sint);
Message* message_slot(uint32_t cpu, uint32_t sint);

struct SintStats {
    uint64_t messages;         // copied out of the slot and handed over
    uint64_t end_of_messages;  // EOM writes (the host had queued another message)
    uint64_t events;           // flags handed over
};
SintStats stats(uint32_t cpu, uint32_t sint);

struct CpuStats {
    uint64_t interrupts;        // deliveries of the SynIC vector
    uint64_t empty_interrupts;  // ... that found nothing in any attached SINT
    uint64_t drain_limit_hits;  // a slot refilled more often than one interrupt drains
};
CpuStats cpu_stats(uint32_t cpu);

}  // namespace hvkvm::guest::synic
