// The SynIC, driven through its MSRs and host-side calls against guest memory, with a fake set of
// MSI lines that records what the VMM would make KVM do.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "hvkvm/abi/synic.h"
#include "interrupts/interrupt_controller.h"
#include "kvm/guest_memory.h"
#include "synic/synic.h"

using namespace hvkvm;
using namespace hvkvm::vmm;
using namespace hvkvm::abi::synic;

namespace {

struct FakeLine final : MsiLine {
    MsiMessage message;
    bool masked = false;
    mutable uint32_t triggers = 0;
    UniqueFd fd{::eventfd(0, EFD_CLOEXEC)};
    void trigger() const override { ++triggers; }
    int eventfd() const override { return fd.get(); }
    void retarget(const MsiMessage& to) override { message = to; }
    void set_masked(bool value) override { masked = value; }
};

struct FakeLines final : MsiLines {
    std::vector<FakeLine*> created;
    std::unique_ptr<MsiLine> msi_line(const MsiMessage& message) override {
        auto line = std::make_unique<FakeLine>();
        line->message = message;
        created.push_back(line.get());
        return line;
    }
};

constexpr uint64_t kSimpGpa = 0x100000, kSiefpGpa = 0x101000;

struct Fixture {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(4 << 20));
    FakeLines lines;
    Synic synic{2, memory, lines};

    void enable(uint32_t vp, uint32_t sint = kVmbusSint, uint64_t vector = 0x40) {
        REQUIRE(synic.write_msr(vp, kMsrSimp, kSimpGpa | kPageEnable));
        REQUIRE(synic.write_msr(vp, kMsrSiefp, kSiefpGpa | kPageEnable));
        REQUIRE(synic.write_msr(vp, kMsrSint0 + sint, vector));
        REQUIRE(synic.write_msr(vp, kMsrScontrol, kScontrolEnable));
    }
    Message& slot(uint32_t sint) { return memory.object_at<Message>(kSimpGpa + sint * sizeof(Message)); }
    void guest_frees(uint32_t sint) { slot(sint).header.message_type = kMessageTypeNone; }
    FakeLine& line(size_t i) { return *lines.created.at(i); }
    std::span<const uint8_t> text(const char* s) { return {reinterpret_cast<const uint8_t*>(s), std::strlen(s)}; }
};

}  // namespace

TEST_CASE("SynIC MSRs: version, reserved bits, pages that are not RAM", "[synic]") {
    Fixture f;
    CHECK(f.synic.read_msr(0, kMsrSversion) == kSynicVersion);
    CHECK_FALSE(f.synic.write_msr(0, kMsrSversion, 2));
    CHECK(f.synic.read_msr(0, kMsrSint0 + 5) == kSintInitialValue);  // SINTs start masked
    CHECK_FALSE(f.synic.write_msr(0, kMsrScontrol, 2));              // reserved bit
    CHECK_FALSE(f.synic.write_msr(0, kMsrSimp, 0x40000000000ull | kPageEnable));  // not RAM
    CHECK_FALSE(f.synic.write_msr(0, kMsrSimp, kSimpGpa | 2));       // reserved bit
    CHECK(f.synic.write_msr(0, kMsrSimp, 0x3ff000 | kPageEnable));   // the last page of RAM fits
    CHECK_FALSE(f.synic.write_msr(0, kMsrSimp, 0x400000 | kPageEnable));  // one page past RAM
    CHECK_FALSE(f.synic.read_msr(0, kMsrEom));                       // write-only
    CHECK_FALSE(f.synic.read_msr(2, kMsrScontrol));                  // no such VP
    CHECK_FALSE(f.synic.write_msr(0, kMsrSint0 + 16, 0x40));         // no such SINT
}

TEST_CASE("SINT vectors: 16 is the lowest accepted, auto-EOI and reserved bits fault", "[synic]") {
    Fixture f;
    CHECK_FALSE(f.synic.write_msr(0, kMsrSint0, 15));
    CHECK(f.synic.write_msr(0, kMsrSint0, 16));
    CHECK(f.synic.write_msr(0, kMsrSint0, 15 | kSintMasked));  // a masked SINT may hold any vector
    CHECK_FALSE(f.synic.write_msr(0, kMsrSint0, 0x40 | kSintAutoEoi));
    CHECK_FALSE(f.synic.write_msr(0, kMsrSint0, 0x40 | (1ull << 19)));
    CHECK(f.synic.read_msr(0, kMsrSint0) == (15 | kSintMasked));
}

TEST_CASE("a SINT's line follows its vector and mask, and SynIC being off masks it", "[synic]") {
    Fixture f;
    f.enable(1, kVmbusSint, 0x40);
    REQUIRE(f.lines.created.size() == 1);
    CHECK(f.line(0).message == MsiMessage::fixed(1, 0x40));  // VP 1's APIC id
    CHECK_FALSE(f.line(0).masked);
    REQUIRE(f.synic.write_msr(1, kMsrSint0 + kVmbusSint, 0x41));
    CHECK(f.line(0).message == MsiMessage::fixed(1, 0x41));
    REQUIRE(f.synic.write_msr(1, kMsrSint0 + kVmbusSint, 0x41 | kSintMasked));
    CHECK(f.line(0).masked);
    REQUIRE(f.synic.write_msr(1, kMsrSint0 + kVmbusSint, 0x41 | kSintPolling));
    CHECK(f.line(0).masked);
    REQUIRE(f.synic.write_msr(1, kMsrSint0 + kVmbusSint, 0x42));
    CHECK_FALSE(f.line(0).masked);
    REQUIRE(f.synic.write_msr(1, kMsrScontrol, 0));
    CHECK(f.line(0).masked);
}

TEST_CASE("a message goes into a free slot, type last, and raises the SINT", "[synic]") {
    Fixture f;
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("x")) == Synic::PostResult::kNotEnabled);
    f.enable(0);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("hello")) == Synic::PostResult::kDelivered);
    const Message& message = f.slot(kVmbusSint);
    CHECK(message.header.message_type == kMessageTypeVmbus);
    CHECK(message.header.payload_size == 5);
    CHECK(message.header.message_flags == 0);
    CHECK(std::memcmp(message.payload, "hello", 5) == 0);
    CHECK(f.line(0).triggers == 1);
    const std::vector<uint8_t> largest(kMessagePayloadMax, 7), too_large(kMessagePayloadMax + 1, 7);
    f.guest_frees(kVmbusSint);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, largest) == Synic::PostResult::kDelivered);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, too_large) == Synic::PostResult::kInvalidTarget);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeNone, f.text("x")) == Synic::PostResult::kInvalidTarget);
    CHECK(f.synic.post_message(2, kVmbusSint, kMessageTypeVmbus, f.text("x")) == Synic::PostResult::kInvalidTarget);
}

TEST_CASE("a busy slot queues the message, flags it pending, and EOM delivers the next", "[synic]") {
    Fixture f;
    f.enable(0);
    REQUIRE(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("first")) == Synic::PostResult::kDelivered);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("second")) == Synic::PostResult::kQueued);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("third")) == Synic::PostResult::kQueued);
    CHECK((f.slot(kVmbusSint).header.message_flags & kMessageFlagPending));
    CHECK(std::memcmp(f.slot(kVmbusSint).payload, "first", 5) == 0);

    CHECK(f.synic.write_msr(0, kMsrEom, 0));  // EOM with the slot still busy: nothing moves
    CHECK(std::memcmp(f.slot(kVmbusSint).payload, "first", 5) == 0);
    f.guest_frees(kVmbusSint);
    CHECK(f.synic.write_msr(0, kMsrEom, 0));
    CHECK(std::memcmp(f.slot(kVmbusSint).payload, "second", 6) == 0);
    CHECK((f.slot(kVmbusSint).header.message_flags & kMessageFlagPending));  // "third" still waits
    f.guest_frees(kVmbusSint);
    CHECK(f.synic.write_msr(0, kMsrEom, 0));
    CHECK(std::memcmp(f.slot(kVmbusSint).payload, "third", 5) == 0);
    CHECK(f.slot(kVmbusSint).header.message_flags == 0);
    CHECK(f.synic.counters().messages_delivered == 3);
}

TEST_CASE("a guest that never frees its slot fills the queue to its limit, then posts are refused", "[synic]") {
    Fixture f;
    f.enable(0);
    REQUIRE(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("x")) == Synic::PostResult::kDelivered);
    for (size_t i = 0; i < Synic::kQueueLimit; ++i)
        REQUIRE(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("q")) == Synic::PostResult::kQueued);
    CHECK(f.synic.post_message(0, kVmbusSint, kMessageTypeVmbus, f.text("q")) == Synic::PostResult::kQueueFull);
    CHECK(f.synic.counters().messages_refused == 1);
}

TEST_CASE("event flags: set in the SIEFP page, the SINT raised only when the flag was clear", "[synic]") {
    Fixture f;
    CHECK_FALSE(f.synic.signal_event(0, kVmbusSint, 3));  // not enabled
    f.enable(0);
    auto* flags = reinterpret_cast<uint64_t*>(f.memory.span(kSiefpGpa + kVmbusSint * kEventFlagBytesPerSint, 256).data());
    CHECK(f.synic.signal_event(0, kVmbusSint, 3));
    CHECK(flags[0] == (1u << 3));
    CHECK(f.line(0).triggers == 1);
    CHECK(f.synic.signal_event(0, kVmbusSint, 3));  // still set: the guest has not seen it yet
    CHECK(f.line(0).triggers == 1);
    CHECK(f.synic.signal_event(0, kVmbusSint, kEventFlagsPerSint - 1));  // the last flag fits
    CHECK(flags[31] == (1ull << 63));
    CHECK_FALSE(f.synic.signal_event(0, kVmbusSint, kEventFlagsPerSint));  // one past
    CHECK(f.line(0).triggers == 2);
}

TEST_CASE("the shared state page tells the root partition where each VP's event flags are", "[synic]") {
    Fixture f;
    void* page = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.synic.shared_state_memfd(), 0);
    REQUIRE(page != MAP_FAILED);
    const auto* shared = static_cast<const SynicSharedState*>(page);
    CHECK(shared->magic == SynicSharedState::kMagic);
    CHECK(shared->vp_count == 2);
    CHECK(shared->siefp_gpa[1] == 0);
    f.enable(1);
    CHECK(shared->siefp_gpa[1] == kSiefpGpa);
    REQUIRE(f.synic.write_msr(1, kMsrScontrol, 0));
    CHECK(shared->siefp_gpa[1] == 0);  // SynIC off: the root must not set flags
    REQUIRE(f.synic.write_msr(1, kMsrScontrol, kScontrolEnable));
    REQUIRE(f.synic.write_msr(1, kMsrSiefp, kSiefpGpa));  // page disabled
    CHECK(shared->siefp_gpa[1] == 0);
    ::munmap(page, 4096);
}

TEST_CASE("a SINT's eventfd exists before the guest unmasks it, and stays the same", "[synic]") {
    Fixture f;
    const int fd = f.synic.sint_eventfd(0, kVmbusSint);
    REQUIRE(fd >= 0);
    CHECK(f.line(0).masked);
    f.enable(0);
    CHECK(f.synic.sint_eventfd(0, kVmbusSint) == fd);
    CHECK_FALSE(f.line(0).masked);
    CHECK(f.synic.sint_eventfd(0, kSintCount) == -1);
    CHECK(f.synic.sint_eventfd(2, 0) == -1);
}
