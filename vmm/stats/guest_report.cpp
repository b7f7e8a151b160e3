#include "stats/guest_report.h"

#include <cstring>
#include <fmt/format.h>

#include "kvm/guest_memory.h"

namespace hvkvm::vmm {
namespace {

bool is_canonical(uint64_t address) {
    const auto upper = static_cast<int64_t>(address) >> 47;
    return upper == 0 || upper == -1;
}

std::string invalid(uint64_t value) { return fmt::format("<invalid: {:#x}>", value); }

std::string vcpu_name(uint32_t cpu, uint32_t vcpu_count) {
    return cpu < vcpu_count ? fmt::format("vCPU {}", cpu) : "vCPU " + invalid(cpu);
}

std::string address(uint64_t value) { return is_canonical(value) ? fmt::format("{:#018x}", value) : invalid(value); }

const char* exception_mnemonic(uint32_t vector) {
    static constexpr const char* kNames[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "(coprocessor overrun)", "#TS",
        "#NP", "#SS", "#GP", "#PF", "(reserved)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
    if (vector < 32) return kNames[vector] ? kNames[vector] : "(reserved)";
    return "interrupt";
}

// Vectors are 0..255; architectural error codes are at most 32 bits wide; CR2 holds a linear
// address, canonical (a non-canonical access is a #GP, not a #PF).
std::string exception_summary(const abi::CrashRecord& crash) {
    const bool vector_valid = crash.vector < 256;
    return fmt::format("unhandled exception {} (vector {}, error code {}) at RIP {}, CR2 {}",
                       vector_valid ? exception_mnemonic(crash.vector) : "(unknown)",
                       vector_valid ? std::to_string(crash.vector) : invalid(crash.vector),
                       crash.error_code <= 0xffffffff ? fmt::format("{:#x}", crash.error_code) : invalid(crash.error_code),
                       address(crash.rip), is_canonical(crash.cr2) ? fmt::format("{:#x}", crash.cr2) : invalid(crash.cr2));
}

}  // namespace

abi::GuestReport read_guest_report(const GuestMemory& memory) {
    abi::GuestReport report;
    std::memcpy(&report, memory.span(abi::kGuestReportGpa, sizeof report).data(), sizeof report);
    if (report.magic != abi::kGuestReportMagic) std::memset(&report, 0, sizeof report);
    return report;
}

std::string sanitize_guest_text(const char* text, size_t capacity) {
    std::string result;
    for (size_t i = 0; i < capacity && text[i]; ++i) result += (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    return result;
}

std::string describe_guest_crash(const abi::CrashRecord& crash, uint32_t vcpu_count) {
    const std::string message = sanitize_guest_text(crash.message, sizeof crash.message);
    switch (crash.kind) {
    case abi::CrashKind::kException:
        return fmt::format("guest crash on {}: {}{}{}", vcpu_name(crash.cpu, vcpu_count), exception_summary(crash),
                           message.empty() ? "" : ": ", message);
    case abi::CrashKind::kPanic:
        return fmt::format("guest panic on {}: {} (RIP {})", vcpu_name(crash.cpu, vcpu_count), message, address(crash.rip));
    case abi::CrashKind::kNone:
        return "guest reported a crash but left no crash record";
    }
    return fmt::format("guest reported a crash with a crash record of kind {}", invalid(static_cast<uint32_t>(crash.kind)));
}

const char* describe_guest_platform(uint32_t platform) {
    switch (static_cast<abi::GuestPlatform>(platform)) {
    case abi::GuestPlatform::kPvm: return "pvm";
    case abi::GuestPlatform::kClassic: return "classic";
    case abi::GuestPlatform::kUnknown: break;
    }
    return "unknown";
}

}  // namespace hvkvm::vmm
