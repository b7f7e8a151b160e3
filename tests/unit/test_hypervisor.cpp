// The VMM's hypervisor interface, driven directly with register values and guest memory.
#include <sys/eventfd.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <thread>

#include "cpu/cpuid.h"
#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypercall_page.h"
#include "hypercalls/hypervisor.h"
#include "kvm/guest_memory.h"

using namespace hvkvm;
using namespace hvkvm::vmm;
using namespace hvkvm::abi::hv;

namespace {

constexpr uint64_t kPage = 0x200000;      // a guest page used for inputs and outputs
constexpr uint64_t kCodePage = 0x300000;  // the hypercall page

struct Partition {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(16 << 20));
    Hypervisor hypervisor{HypervisorConfig{4, 2'600'000}, memory};
    std::vector<std::pair<uint32_t, std::string>> messages;

    Partition() {
        hypervisor.add_message_connection(kConsoleConnectionId, [this](uint32_t type, std::span<const uint8_t> text) {
            messages.emplace_back(type, std::string(text.begin(), text.end()));
            return Status::kSuccess;
        });
    }
    void enable_hypercalls() {
        REQUIRE(hypervisor.write_msr(0, kMsrGuestOsId, 0x8100000000000000ull));
        REQUIRE(hypervisor.write_msr(0, kMsrHypercall, kCodePage | kHypercallEnable));
    }
    Status call(uint64_t control, uint64_t input = 0, uint64_t output = 0, uint32_t vp = 0) {
        return status_of(hypervisor.hypercall(vp, {control, input, output}, -1));
    }
    template <typename T>
    T& at(uint64_t gpa) { return memory.object_at<T>(gpa); }
};

PostMessageInput console_message(const std::string& text) {
    PostMessageInput message{};
    message.connection_id = kConsoleConnectionId;
    message.message_type = kMessageTypeConsoleText;
    message.payload_size = static_cast<uint32_t>(text.size());
    std::memcpy(message.payload, text.data(), text.size());
    return message;
}

}  // namespace

TEST_CASE("the hypercall page is written only once a guest OS id is set", "[hypervisor]") {
    Partition partition;
    CHECK(partition.hypervisor.write_msr(0, kMsrHypercall, kCodePage | kHypercallEnable));
    CHECK_FALSE(partition.hypervisor.hypercall_page_enabled());  // TLFS: needs a non-zero OS id
    CHECK((*partition.hypervisor.read_msr(0, kMsrHypercall) & kHypercallEnable) == 0);
    partition.enable_hypercalls();
    CHECK(partition.hypervisor.hypercall_page_enabled());
    const auto code = hypercall_page_code();
    CHECK(std::memcmp(partition.memory.span(kCodePage, code.size()).data(), code.data(), code.size()) == 0);
    CHECK(partition.memory.span(kCodePage + 4095, 1)[0] == std::byte(0xcc));
    CHECK(partition.hypervisor.write_msr(0, kMsrGuestOsId, 0));  // a zero OS id disables the page
    CHECK_FALSE(partition.hypervisor.hypercall_page_enabled());
}

TEST_CASE("the hypercall page code never uses vmcall", "[hypervisor]") {
    const auto code = hypercall_page_code();
    REQUIRE(code.size() > 8);
    REQUIRE(code.size() < 4096);
    for (size_t i = 0; i + 2 < code.size(); ++i) {
        const bool vmcall = code[i] == 0x0f && code[i + 1] == 0x01 && (code[i + 2] == 0xc1 || code[i + 2] == 0xd9);
        CHECK_FALSE(vmcall);
    }
}

TEST_CASE("synthetic MSRs read and fault as the TLFS says", "[hypervisor]") {
    Partition partition;
    CHECK(partition.hypervisor.read_msr(3, kMsrVpIndex) == 3u);
    CHECK(partition.hypervisor.read_msr(0, kMsrTscFrequency) == 2'600'000'000ull);
    CHECK(partition.hypervisor.read_msr(0, kMsrApicFrequency) == 1'000'000'000ull);
    CHECK_FALSE(partition.hypervisor.write_msr(0, kMsrVpIndex, 1));
    CHECK_FALSE(partition.hypervisor.write_msr(0, kMsrTimeRefCount, 1));
    CHECK_FALSE(partition.hypervisor.read_msr(0, 0x400000fe));
    partition.hypervisor.write_msr(0, kMsrGuestOsId, 1);
    CHECK_FALSE(partition.hypervisor.write_msr(0, kMsrHypercall, 0x40000000000ull | kHypercallEnable));  // not RAM
    CHECK(partition.hypervisor.write_msr(0, kMsrHypercall, kCodePage | kHypercallEnable | kHypercallLocked));
    CHECK_FALSE(partition.hypervisor.write_msr(0, kMsrHypercall, 0));  // locked
    const uint64_t before = *partition.hypervisor.read_msr(0, kMsrTimeRefCount);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(*partition.hypervisor.read_msr(0, kMsrTimeRefCount) >= before + 20'000);  // 100 ns units
}

TEST_CASE("hypercalls before the page is enabled are denied", "[hypervisor]") {
    Partition partition;
    CHECK(partition.call(make_control(CallCode::kNotifyLongSpinWait, true)) == Status::kAccessDenied);
}

TEST_CASE("the control word is validated", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const uint64_t spin = make_control(CallCode::kNotifyLongSpinWait, true);
    CHECK(partition.call(spin) == Status::kSuccess);
    CHECK(partition.call(0x7777) == Status::kInvalidHypercallCode);
    CHECK(partition.call(spin | (1ull << kControlRepCountShift)) == Status::kInvalidHypercallInput);
    CHECK(partition.call(spin | (1ull << kControlRepStartShift)) == Status::kInvalidHypercallInput);
    CHECK(partition.call(spin | (1ull << kControlVarHeaderShift)) == Status::kInvalidHypercallInput);
    CHECK(partition.call(spin | (1ull << 31)) == Status::kInvalidHypercallInput);
    CHECK(partition.call(spin | (1ull << 63)) == Status::kInvalidHypercallInput);
}

TEST_CASE("PostMessage copies the input once and refuses bad messages", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const uint64_t post = make_control(CallCode::kPostMessage);
    partition.at<PostMessageInput>(kPage) = console_message("hello");
    CHECK(partition.call(post, kPage) == Status::kSuccess);
    REQUIRE(partition.messages.size() == 1);
    CHECK(partition.messages[0] == std::make_pair(kMessageTypeConsoleText, std::string("hello")));

    auto refused = [&](PostMessageInput message, uint64_t gpa = kPage) {
        partition.at<PostMessageInput>(kPage) = message;
        return partition.call(post, gpa);
    };
    PostMessageInput message = console_message("x");
    message.connection_id = 0x123;
    CHECK(refused(message) == Status::kInvalidConnectionId);
    message = console_message("x");
    message.payload_size = 241;
    CHECK(refused(message) == Status::kInvalidParameter);
    message = console_message("x");
    message.message_type = 0;
    CHECK(refused(message) == Status::kInvalidParameter);
    message.message_type = 0x80000000;
    CHECK(refused(message) == Status::kInvalidParameter);
    message = console_message("x");
    message.reserved = 7;
    CHECK(refused(message) == Status::kInvalidParameter);
    CHECK(refused(console_message("x"), kPage + 4) == Status::kInvalidAlignment);
    CHECK(partition.call(post, kPage + 4096 - 128) == Status::kInvalidAlignment);  // crosses the page
    CHECK(partition.call(post, 0x40000000000ull) == Status::kInvalidAlignment);    // not RAM
    CHECK(partition.call(post | kControlFast, kPage) == Status::kInvalidHypercallInput);
    CHECK(partition.messages.size() == 1);
}

TEST_CASE("hypercall buffers may end exactly at a page end or RAM's end, not past it", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const uint64_t post = make_control(CallCode::kPostMessage);
    const uint64_t last_fit = kPage + 4096 - sizeof(PostMessageInput);
    partition.at<PostMessageInput>(last_fit) = console_message("fits");
    CHECK(partition.call(post, last_fit) == Status::kSuccess);              // ends at the page end
    CHECK(partition.call(post, last_fit + 8) == Status::kInvalidAlignment);  // the next aligned start crosses it
    const uint64_t ram_end = partition.memory.size();
    partition.at<PostMessageInput>(ram_end - sizeof(PostMessageInput)) = console_message("end of RAM");
    CHECK(partition.call(post, ram_end - sizeof(PostMessageInput)) == Status::kSuccess);
    CHECK(partition.call(post, ram_end) == Status::kInvalidAlignment);       // not RAM at all
    REQUIRE(partition.messages.size() == 2);
    CHECK(partition.messages[1].second == "end of RAM");

    const uint64_t last_word = kPage + 4096 - 8;
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime), 0, last_word) == Status::kSuccess);
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime), 0, ram_end - 8) == Status::kSuccess);
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime), 0, ram_end) == Status::kInvalidAlignment);
    partition.hypervisor.add_event_connection(0x200);
    partition.at<uint64_t>(last_word) = 0x200;
    CHECK(partition.call(make_control(CallCode::kSignalEvent), last_word) == Status::kSuccess);
}

TEST_CASE("SignalEvent signals the connection's eventfd", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const int eventfd = partition.hypervisor.add_event_connection(0x200);
    const uint64_t fast = make_control(CallCode::kSignalEvent, true);
    CHECK(partition.call(fast, 0x200) == Status::kSuccess);
    CHECK(partition.call(fast, 0x201) == Status::kInvalidConnectionId);
    CHECK(partition.call(fast, 0x200 | (1ull << 32)) == Status::kInvalidParameter);    // flag 1
    CHECK(partition.call(fast, 0x200 | (1ull << 48)) == Status::kInvalidHypercallInput);
    CHECK(status_of(partition.hypervisor.signal_event_doorbell(0x200)) == Status::kSuccess);
    CHECK(status_of(partition.hypervisor.signal_event_doorbell(0x999)) == Status::kInvalidConnectionId);
    partition.at<uint64_t>(kPage) = 0x200;
    CHECK(partition.call(make_control(CallCode::kSignalEvent), kPage) == Status::kSuccess);
    uint64_t count = 0;
    REQUIRE(::read(eventfd, &count, sizeof count) == sizeof count);
    CHECK(count == 3);
}

TEST_CASE("GetReferenceTime writes to the output page", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    partition.at<uint64_t>(kPage) = 0;
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime), 0, kPage) == Status::kSuccess);
    CHECK(partition.at<uint64_t>(kPage) > 0);
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime), 0, kPage + 1) == Status::kInvalidAlignment);
    CHECK(partition.call(make_control(CallCode::kGetReferenceTime, true)) == Status::kInvalidHypercallInput);
}

TEST_CASE("WaitForKick returns on a kick from another VP, or times out", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const uint64_t wait = make_control(CallCode::kWaitForKick, true);
    const uint64_t kick = make_control(CallCode::kKickVp, true);
    auto start = std::chrono::steady_clock::now();
    CHECK(partition.call(wait, 20'000, 0, 1) == Status::kTimeout);  // 2 ms
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(2));

    CHECK(partition.call(kick, 1) == Status::kSuccess);  // a kick before the wait is kept
    CHECK(partition.call(wait, 0, 0, 1) == Status::kSuccess);

    std::thread waiter([&] { CHECK(partition.call(wait, 0, 0, 2) == Status::kSuccess); });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(partition.call(kick, 2, 0, 0) == Status::kSuccess);
    waiter.join();

    CHECK(partition.call(kick, 4) == Status::kInvalidVpIndex);
    CHECK(partition.call(kick, 1ull << 32) == Status::kInvalidVpIndex);
    CHECK(partition.call(make_control(CallCode::kKickVp), 1) == Status::kInvalidHypercallInput);
    CHECK(status_of(partition.hypervisor.kick_vp_doorbell(9)) == Status::kInvalidVpIndex);
}

TEST_CASE("WaitForKick ends when the VM stops", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    const int stop = ::eventfd(0, EFD_CLOEXEC);
    std::thread waiter([&] {
        CHECK(status_of(partition.hypervisor.hypercall(0, {make_control(CallCode::kWaitForKick, true), 0, 0}, stop)) ==
              Status::kTimeout);
    });
    const uint64_t one = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(::write(stop, &one, sizeof one) == sizeof one);
    waiter.join();
    ::close(stop);
}

TEST_CASE("calls are counted by code for the report", "[hypervisor]") {
    Partition partition;
    partition.enable_hypercalls();
    partition.call(make_control(CallCode::kNotifyLongSpinWait, true));
    partition.call(make_control(CallCode::kNotifyLongSpinWait, true));
    partition.call(0x0777);
    partition.call(0x7777);
    partition.call(make_control(CallCode::kKickVp, true), 2);
    const auto counts = partition.hypervisor.final_call_counts();
    auto count_of = [&](const std::string& prefix) -> uint64_t {
        for (const auto& c : counts)
            if (c.name.rfind(prefix, 0) == 0) return c.count;
        return 0;
    };
    CHECK(count_of("NotifyLongSpinWait") == 2);
    CHECK(count_of("unknown codes") == 2);  // one line however many codes the guest tried
    CHECK(counts.size() == 4);
    CHECK(count_of("KickVp") == 1);
    CHECK(count_of("VP kicks delivered") == 1);
}

TEST_CASE("CPUID presents our hypervisor leaves instead of KVM's", "[cpuid]") {
    std::vector<kvm_cpuid_entry2> supported(3);
    supported[0].function = 0x1;
    supported[1].function = 0x40000000;  // KVM's signature leaf
    supported[1].ebx = 0x4b4d564b;
    supported[2].function = 0x40000001;
    const auto entries = vcpu_cpuid(supported, 2, 4, HypervisorLeaves{4095, 64, 2});
    auto find = [&](uint32_t function) {
        const kvm_cpuid_entry2* found = nullptr;
        for (const auto& entry : entries)
            if (entry.function == function) {
                REQUIRE(found == nullptr);  // exactly one
                found = &entry;
            }
        REQUIRE(found != nullptr);
        return *found;
    };
    const auto vendor = find(kCpuidVendor);
    CHECK(vendor.eax == kCpuidMaxLeaf);
    char signature[13] = {};
    std::memcpy(signature, &vendor.ebx, 4);
    std::memcpy(signature + 4, &vendor.ecx, 4);
    std::memcpy(signature + 8, &vendor.edx, 4);
    CHECK(std::string(signature) == kVendorSignature);
    CHECK(find(kCpuidInterface).eax == kInterfaceSignature);
    CHECK(find(kCpuidRecommendations).ebx == 4095);
    CHECK(find(kCpuidLimits).ebx == 2);
    CHECK(find(kCpuidFeatures).eax & kPrivilegeHypercallMsrs);
    CHECK(find(0x1).ebx >> 24 == 2);               // APIC id
    CHECK(find(0x1).ecx & (1u << 31));             // hypervisor present
}
