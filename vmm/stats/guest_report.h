// The guest's report page (abi::GuestReport at abi::kGuestReportGpa), as the VMM reads it: copied
// once, then every value that reaches a diagnostic is validated and shown as invalid when it is.
// A guest can write anything there, so nothing in it is a fact about the VM: a crash record may
// name a vCPU that does not exist, a vector past 255, a non-canonical address, a message of
// control bytes.
#pragma once

#include <cstdint>
#include <string>

#include "hvkvm/abi/boot.h"

namespace hvkvm::vmm {

class GuestMemory;

// A copy of the report, or an all-zero one if the guest never wrote it (no magic).
abi::GuestReport read_guest_report(const GuestMemory& memory);

// One printable line for the user about the guest's crash record, in a VM of `vcpu_count` vCPUs.
std::string describe_guest_crash(const abi::CrashRecord& crash, uint32_t vcpu_count);

// The platform the guest says it chose: "pvm", "classic" or "unknown".
const char* describe_guest_platform(uint32_t platform);

// A guest-written string, bounded by its field and reduced to printable ASCII ('?' for the rest).
std::string sanitize_guest_text(const char* text, size_t capacity);

}  // namespace hvkvm::vmm
