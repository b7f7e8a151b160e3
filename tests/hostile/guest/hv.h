// The hostile guest's side of the hypervisor interface (docs/hypercalls.md): enabling the
// hypercall page and calling through it with any register values at all.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/hypercall.h"

namespace hostile::hv {

using hvkvm::abi::hv::CallCode;
using hvkvm::abi::hv::Status;

// The page the guest offers as its hypercall page (page-aligned, in .bss, identity-mapped).
uint64_t default_page();
// GUEST_OS_ID, then HYPERCALL = page | enable. False if the VMM refused (the wrmsr faulted).
bool enable(uint64_t page_gpa);
bool enable();
bool page_enabled();

// Calls the enabled page with RCX, RDX, R8 as given; returns RAX.
uint64_t call(uint64_t control, uint64_t input, uint64_t output);
Status call_status(uint64_t control, uint64_t input, uint64_t output);
Status notify_long_spin_wait(uint32_t spin_count);
Status post_message(uint32_t connection_id, uint32_t message_type, const void* payload, uint32_t size);
Status signal_event(uint32_t connection_id);
Status kick_vp(uint64_t vp_index);
Status wait_for_kick(uint64_t timeout_100ns);
// Guest console text through PostMessage, 240 bytes per call.
void console_write(const char* text, uint64_t size);

}  // namespace hostile::hv
