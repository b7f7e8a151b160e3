// The guest's side of the hypervisor interface (hvkvm/abi/hypercall.h): discovery, the hypercall
// page, and one function per hypercall. All calls go through the page the VMM fills, so the same
// kernel runs on PVM hosts (where the page uses port I/O and ioeventfds) and elsewhere.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/hypercall.h"

namespace hvkvm::guest::hv {

using abi::hv::Status;

// Boot CPU, after the memory manager: checks the interface ("Hv#1" and the privileges the kernel
// uses), sets the guest OS id, enables the hypercall page. False (and the kernel does without
// hypercalls) if the hypervisor does not offer them.
bool init();
bool available();

// CPUID 0x40000004 EBX: spins before notifying the hypervisor of a long spin wait
// (abi::hv::kSpinCountNeverNotify: never).
uint32_t recommended_spin_count();
uint32_t host_logical_processors();  // CPUID 0x40000005 EBX (0: not reported)
// CPUID 0x40000003 EAX bit 2: the SynIC MSRs (hvkvm/abi/synic.h) are there.
bool synic_available();

// The raw call: RCX = control, RDX = input, R8 = output. Returns the result value.
uint64_t hypercall(uint64_t control, uint64_t input, uint64_t output);

Status notify_long_spin_wait(uint32_t spin_count);
Status post_message(uint32_t connection_id, uint32_t message_type, const void* payload, uint32_t size);
Status signal_event(uint32_t connection_id, uint16_t flag_number = 0);
Status get_reference_time(uint64_t& time_100ns);
Status kick_vp(uint32_t vp_index);
Status wait_for_kick(uint64_t timeout_100ns);  // 0: no limit

// Synthetic MSRs.
uint32_t vp_index();                 // HV_X64_MSR_VP_INDEX of this CPU
uint64_t reference_counter_100ns();  // HV_X64_MSR_TIME_REF_COUNT

}  // namespace hvkvm::guest::hv
