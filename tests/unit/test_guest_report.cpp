// Guest-supplied values in diagnostics (vmm/stats/guest_report.h, the boot timeline): validated,
// and shown as invalid when they are, at the exact limit and one past it.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <thread>

#include "kvm/guest_memory.h"
#include "stats/boot_timeline.h"
#include "stats/guest_report.h"

using namespace hvkvm;
using namespace hvkvm::vmm;

namespace {

abi::CrashRecord exception_record() {
    abi::CrashRecord crash{};
    crash.kind = abi::CrashKind::kException;
    crash.cpu = 3;
    crash.vector = 14;
    crash.error_code = 0x2;
    crash.rip = 0x105000;
    crash.cr2 = 0x400000000000;
    std::strcpy(crash.message, "page fault in thread main");
    return crash;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a valid crash record is described as the guest reported it", "[guest-report]") {
    CHECK(describe_guest_crash(exception_record(), 4) ==
          "guest crash on vCPU 3: unhandled exception #PF (vector 14, error code 0x2) at RIP 0x0000000000105000, "
          "CR2 0x400000000000: page fault in thread main");
    abi::CrashRecord panic{};
    panic.kind = abi::CrashKind::kPanic;
    panic.rip = 0xffffffff81000000;
    std::strcpy(panic.message, "out of memory");
    CHECK(describe_guest_crash(panic, 1) == "guest panic on vCPU 0: out of memory (RIP 0xffffffff81000000)");
}

TEST_CASE("the crash record's vCPU must exist: the last one is accepted, one past is invalid", "[guest-report]") {
    abi::CrashRecord crash = exception_record();
    crash.cpu = 3;
    CHECK(mentions(describe_guest_crash(crash, 4), "on vCPU 3:"));
    crash.cpu = 4;
    CHECK(mentions(describe_guest_crash(crash, 4), "on vCPU <invalid: 0x4>:"));
    crash.cpu = 0xfffffffe;
    const std::string text = describe_guest_crash(crash, 1);
    CHECK_FALSE(mentions(text, "4294967294"));
    CHECK(mentions(text, "<invalid: 0xfffffffe>"));
}

TEST_CASE("vector, error code and addresses are checked at their limits", "[guest-report]") {
    abi::CrashRecord crash = exception_record();
    crash.vector = 255;
    CHECK(mentions(describe_guest_crash(crash, 4), "interrupt (vector 255,"));
    crash.vector = 256;
    CHECK(mentions(describe_guest_crash(crash, 4), "(unknown) (vector <invalid: 0x100>,"));
    crash.error_code = 0xffffffff;
    CHECK(mentions(describe_guest_crash(crash, 4), "error code 0xffffffff)"));
    crash.error_code = 0x100000000;
    CHECK(mentions(describe_guest_crash(crash, 4), "error code <invalid: 0x100000000>)"));
    crash.rip = 0x00007fffffffffff;
    CHECK(mentions(describe_guest_crash(crash, 4), "RIP 0x00007fffffffffff"));
    crash.rip = 0x0000800000000000;
    CHECK(mentions(describe_guest_crash(crash, 4), "RIP <invalid: 0x800000000000>"));
    crash.rip = 0xffff800000000000;
    CHECK(mentions(describe_guest_crash(crash, 4), "RIP 0xffff800000000000"));
    crash.cr2 = 0xffff7fffffffffff;
    CHECK(mentions(describe_guest_crash(crash, 4), "CR2 <invalid: 0xffff7fffffffffff>"));
}

TEST_CASE("unknown crash kinds and hostile messages are shown as such", "[guest-report]") {
    abi::CrashRecord crash = exception_record();
    crash.kind = abi::CrashKind::kNone;
    CHECK(describe_guest_crash(crash, 4) == "guest reported a crash but left no crash record");
    crash.kind = static_cast<abi::CrashKind>(7);
    CHECK(describe_guest_crash(crash, 4) == "guest reported a crash with a crash record of kind <invalid: 0x7>");
    crash = exception_record();
    std::memset(crash.message, '\x1b', sizeof crash.message);  // no NUL at all
    crash.message[1] = '\n';
    const std::string text = describe_guest_crash(crash, 4);
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find('\n') == std::string::npos);
    CHECK(mentions(text, ": " + std::string(abi::kCrashMessageMax, '?')));
    CHECK(sanitize_guest_text("ok\x7f\x80", 4) == "ok??");
}

TEST_CASE("the report is read only under its magic", "[guest-report]") {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(16 << 20));
    auto& report = memory.object_at<abi::GuestReport>(abi::kGuestReportGpa);
    report.crash = exception_record();
    report.platform = static_cast<uint32_t>(abi::GuestPlatform::kPvm);
    report.magic = abi::kGuestReportMagic ^ 1;
    CHECK(read_guest_report(memory).crash.kind == abi::CrashKind::kNone);
    CHECK(read_guest_report(memory).platform == 0);
    report.magic = abi::kGuestReportMagic;
    CHECK(read_guest_report(memory).crash.cpu == 3);
    CHECK(std::string(describe_guest_platform(read_guest_report(memory).platform)) == "pvm");
    CHECK(std::string(describe_guest_platform(0x12345678)) == "unknown");
}

TEST_CASE("boot phase stamps outside the run are listed as invalid, after the others", "[guest-report]") {
    using namespace std::chrono_literals;
    BootTimeline timeline(BootTimeline::Clock::now());
    timeline.mark_first_run();
    std::this_thread::sleep_for(5ms);
    timeline.mark_milestone(abi::BootPhase::kKernelMain);
    timeline.mark_guest_stop();
    constexpr uint64_t kTscKhz = 1'000'000;  // 1 GHz: 1,000,000 ticks per ms
    constexpr uint64_t kMain = 1'000'000'000'000;
    std::array<uint64_t, abi::kBootPhaseCount> stamps{};
    stamps[static_cast<uint32_t>(abi::BootPhase::kKernelMain)] = kMain;
    stamps[static_cast<uint32_t>(abi::BootPhase::kConsoleReady)] = kMain - 1'000'000;     // 1 ms before main: fine
    stamps[static_cast<uint32_t>(abi::BootPhase::kMemoryReady)] = kMain - 60'000'000'000;  // a minute before: invalid
    stamps[static_cast<uint32_t>(abi::BootPhase::kSchedulerReady)] = ~uint64_t{0};         // the far future: invalid
    const auto entries = timeline.entries(stamps, kTscKhz);
    double guest_stop = -1;
    for (const auto& entry : entries)
        if (entry.label == "guest stop") guest_stop = entry.ms;
    REQUIRE(guest_stop > 0);
    bool seen_invalid = false;
    for (const auto& entry : entries) {
        if (entry.valid) {
            CHECK_FALSE(seen_invalid);  // invalid entries come last
            CHECK(entry.ms <= guest_stop);
        }
        seen_invalid |= !entry.valid;
        if (entry.label == boot_phase_name(abi::BootPhase::kConsoleReady)) CHECK(entry.valid);
        if (entry.label == boot_phase_name(abi::BootPhase::kMemoryReady)) CHECK_FALSE(entry.valid);
        if (entry.label == boot_phase_name(abi::BootPhase::kSchedulerReady)) CHECK_FALSE(entry.valid);
    }
    CHECK(seen_invalid);
}
