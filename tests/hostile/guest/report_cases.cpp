// Forged guest reports: crash records naming vCPUs that do not exist, vectors past 255,
// non-canonical addresses, messages full of control bytes; boot-phase stamps from the far future
// and the distant past; garbage exit codes and milestones; a report page rewritten while the VMM
// reads it. The VMM must show each guest-supplied value as it is or as invalid, never as a fact.
#include "cases.h"
#include "guest.h"

namespace hostile {
namespace {

abi::GuestReport& report() { return *reinterpret_cast<abi::GuestReport*>(abi::kGuestReportGpa); }

// Control characters, an ANSI "clear screen", a newline and no NUL: the VMM prints none of it raw.
void fill_hostile_message(char (&message)[abi::kCrashMessageMax]) {
    const char prefix[] = "forged\x1b[2J\r\nsecond line\a\t";
    for (size_t i = 0; i < sizeof message; ++i)
        message[i] = i + 1 < sizeof prefix ? prefix[i] : static_cast<char>(0x80 + (i & 0x7f));
}

[[noreturn]] void exit_with_crash(const abi::CrashRecord& crash) {
    report().magic = abi::kGuestReportMagic;
    report().crash = crash;
    exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kCrash));
}

void forged_crash_record() {
    abi::CrashRecord crash{};
    crash.kind = abi::CrashKind::kException;
    crash.cpu = 0xfffffffe;
    crash.vector = 0xffffffff;
    crash.error_code = ~0ull;
    crash.rip = 0x8000000000000000ull;  // non-canonical
    crash.cr2 = 0x0000800000000000ull;  // non-canonical
    fill_hostile_message(crash.message);
    exit_with_crash(crash);
}

void forged_panic() {
    abi::CrashRecord crash{};
    crash.kind = abi::CrashKind::kPanic;
    crash.cpu = vcpu_count();  // one past the last vCPU
    crash.rip = 0xffff800000001234ull;
    fill_hostile_message(crash.message);
    exit_with_crash(crash);
}

void forged_crash_kind() {
    abi::CrashRecord crash{};
    crash.kind = static_cast<abi::CrashKind>(0x77);
    crash.cpu = 0;
    fill_hostile_message(crash.message);
    exit_with_crash(crash);
}

// A plausible crash record under the wrong magic: the VMM must ignore the whole report.
void forged_report_magic() {
    abi::CrashRecord crash{};
    crash.kind = abi::CrashKind::kPanic;
    const char text[] = "this record is not under a report magic";
    memcpy(crash.message, text, sizeof text);
    report().crash = crash;
    report().magic = abi::kGuestReportMagic ^ 1;
    exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kCrash));
}

void mark_milestone(uint32_t phase) { outl(abi::kBootMilestonePort, phase); }

// Boot-phase stamps no real boot produces, around an honest "guest main" milestone: the VMM must
// not place any of them outside the run. With `anchor=forged` the main milestone's own stamp is
// forged too, so every stamp relative to it is nonsense.
void forged_phase_stamps() {
    const uint64_t now = rdtsc();
    const uint64_t year = tsc_khz() * 1000 * 3600 * 24 * 365;
    abi::GuestReport& r = report();
    r.magic = abi::kGuestReportMagic;
    r.platform = 0x12345678;
    const uint64_t stamps[abi::kBootPhaseCount] = {now, ~0ull, 1, 0x8000000000000000ull, now + year, 0, now - now / 2, now};
    for (uint32_t phase = 0; phase < abi::kBootPhaseCount; ++phase) r.phase_tsc[phase] = stamps[phase];
    if (command_line_equals("anchor", "forged")) r.phase_tsc[static_cast<uint32_t>(abi::BootPhase::kKernelMain)] = 1;
    mark_milestone(static_cast<uint32_t>(abi::BootPhase::kGuestEntry));
    for (uint32_t garbage : {8u, 0x80000000u, 0xffffffffu}) mark_milestone(garbage);
    mark_milestone(static_cast<uint32_t>(abi::BootPhase::kKernelMain));
    // Once more, later: the VMM keeps the first time it saw each milestone.
    mark_milestone(static_cast<uint32_t>(abi::BootPhase::kGuestEntry));
}

void exit_code_garbage() { exit_vm(static_cast<uint32_t>(command_line_number("code", 5))); }

// Every AP rewrites the report page as fast as it can while the boot vCPU reports a crash: the
// VMM copies the report once and describes that copy.
uint32_t scribbling;
void scribble(uint32_t cpu) {
    auto* bytes = reinterpret_cast<volatile uint64_t*>(abi::kGuestReportGpa);
    uint64_t state = 0x9e3779b97f4a7c15ull * (cpu + 1);
    atomic_add(scribbling, 1u);
    for (;;) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        const uint64_t index = state % (sizeof(abi::GuestReport) / 8);
        bytes[index] = index == 0 ? (state & 1 ? abi::kGuestReportMagic : state) : state;
    }
}

void report_scribble() {
    start_all_aps(scribble);
    wait_for_count(scribbling, vcpu_count() - 1);
    abi::CrashRecord crash{};
    crash.kind = abi::CrashKind::kPanic;
    crash.cpu = 0;
    fill_hostile_message(crash.message);
    exit_with_crash(crash);
}

const Case kCases[] = {
    {"forged-crash-record", forged_crash_record}, {"forged-panic", forged_panic},
    {"forged-crash-kind", forged_crash_kind},     {"forged-report-magic", forged_report_magic},
    {"forged-phase-stamps", forged_phase_stamps}, {"exit-code-garbage", exit_code_garbage},
    {"report-scribble", report_scribble},
};

}  // namespace

const CaseGroup kReportCases = group(kCases);

}  // namespace hostile
