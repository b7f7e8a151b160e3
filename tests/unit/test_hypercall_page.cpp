// The hypercall page as the guest executes it: rewritten under concurrent callers, and which PIO
// exits count as its own `out` instructions (vmm/hypercalls/page_exit.h).
#include <linux/kvm.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "exits/guest_code.h"
#include "exits/pio_exit.h"
#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypercall_page.h"
#include "hypercalls/hypervisor.h"
#include "hypercalls/page_exit.h"
#include "kvm/guest_memory.h"

using namespace hvkvm::vmm;
using namespace hvkvm::abi::hv;

namespace {

constexpr uint64_t kCodePage = 0x300000;

struct Partition {
    GuestMemory memory = GuestMemory::create(MemoryLayout::for_ram(16 << 20));
    Hypervisor hypervisor{HypervisorConfig{2, 2'600'000}, memory};
    void enable(uint64_t page = kCodePage) {
        REQUIRE(hypervisor.write_msr(0, kMsrGuestOsId, 1));
        REQUIRE(hypervisor.write_msr(0, kMsrHypercall, page | kHypercallEnable));
    }
};

// A single 4-byte OUT exit to `port`, as KVM reports the page's own instruction.
struct OutExit {
    std::vector<uint8_t> run_area = std::vector<uint8_t>(3 * 4096, 0);
    PioExit exit;
    explicit OutExit(uint16_t port, uint8_t size = 4, uint32_t count = 1, uint8_t direction = KVM_EXIT_IO_OUT) {
        auto& run = *reinterpret_cast<kvm_run*>(run_area.data());
        run.exit_reason = KVM_EXIT_IO;
        run.io = {direction, size, port, count, 4096};
        exit = *decode_pio_exit(run_area);
    }
};

// What guest memory holds at a guest-physical address, as read_guest_code would return it for an
// identity-mapped RIP.
GuestCode code_at(const GuestMemory& memory, uint64_t gpa) {
    GuestCode code;
    code.gpa = gpa;
    code.length = kMaxInstructionLength;
    std::memcpy(code.bytes.data(), memory.span(gpa, kMaxInstructionLength).data(), kMaxInstructionLength);
    return code;
}

uint64_t out_gpa(uint16_t port) { return kCodePage + *hypercall_page_out_offset(port); }

}  // namespace

TEST_CASE("re-enabling the hypercall page never shows a caller anything but its code", "[hypercall-page]") {
    Partition partition;
    partition.enable();
    const auto code = hypercall_page_code();
    const auto* page = reinterpret_cast<const volatile uint8_t*>(partition.memory.span(kCodePage, 4096).data());
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> looks{0}, torn{0};
    // Another vCPU fetching the page's code, byte by byte, while the guest rewrites the MSR.
    std::thread caller([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            for (size_t i = 0; i < code.size(); ++i)
                if (page[i] != code[i]) ++torn;
            ++looks;
        }
    });
    while (looks.load() == 0) std::this_thread::yield();
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    uint64_t rewrites = 0;
    while (std::chrono::steady_clock::now() < until || looks.load() < 1000) {
        REQUIRE(partition.hypervisor.write_msr(0, kMsrHypercall, kCodePage | kHypercallEnable));
        ++rewrites;
    }
    stop = true;
    caller.join();
    INFO(rewrites << " rewrites, " << looks.load() << " looks at the code");
    CHECK(torn.load() == 0);
}

TEST_CASE("the page's outs are known by their offsets, two bytes each", "[hypercall-page]") {
    const auto code = hypercall_page_code();
    for (uint16_t port : {kHypercallPort, kSignalEventPort, kKickVpPort}) {
        const auto offset = hypercall_page_out_offset(port);
        REQUIRE(offset);
        REQUIRE(*offset + kHypercallPageOutLength <= code.size());
        const auto instruction = decode_pio_instruction(code.subspan(*offset));
        REQUIRE(instruction);
        CHECK_FALSE(instruction->string);
        CHECK(instruction->immediate_port == port);
        CHECK(instruction->size == 4);
        CHECK(instruction->length == kHypercallPageOutLength);
    }
    CHECK_FALSE(hypercall_page_out_offset(0xec));
}

TEST_CASE("the page's own out is a hypercall with RIP on it or just past it", "[hypercall-page]") {
    Partition partition;
    partition.enable();
    for (uint16_t port : {kHypercallPort, kSignalEventPort, kKickVpPort}) {
        const OutExit out(port);
        CHECK(is_hypercall_page_out(out.exit, code_at(partition.memory, out_gpa(port)), 0, partition.hypervisor));
        CHECK(is_hypercall_page_out(out.exit, code_at(partition.memory, out_gpa(port) + kHypercallPageOutLength), 0,
                                    partition.hypervisor));
        CHECK_FALSE(is_hypercall_page_out(out.exit, code_at(partition.memory, out_gpa(port) + 1), 0, partition.hypervisor));
    }
}

TEST_CASE("no other access to the page's ports is a hypercall", "[hypercall-page]") {
    Partition partition;
    const GuestCode at_out = code_at(partition.memory, out_gpa(kHypercallPort));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit, at_out, 0, partition.hypervisor));  // not enabled yet
    partition.enable();
    const GuestCode enabled_out = code_at(partition.memory, out_gpa(kHypercallPort));
    CHECK(is_hypercall_page_out(OutExit(kHypercallPort).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort, 2).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort, 1).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort, 4, 2).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort, 4, 1, KVM_EXIT_IO_IN).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(0x80).exit, enabled_out, 0, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kSignalEventPort).exit, enabled_out, 0, partition.hypervisor));  // the other out

    // The same instruction copied elsewhere in guest memory.
    const uint64_t elsewhere = 0x500000;
    std::memcpy(partition.memory.span(elsewhere, 2).data(), "\xe7\xe0", 2);
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit, code_at(partition.memory, elsewhere), 0, partition.hypervisor));

    // A string out right after the page's out explains the exit itself: RIP is on it, not past the page's.
    std::memcpy(partition.memory.span(out_gpa(kHypercallPort) + 2, 2).data(), "\xf3\x6f", 2);
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit, code_at(partition.memory, out_gpa(kHypercallPort) + 2),
                                      kHypercallPort, partition.hypervisor));

    // The guest overwrites the page's out with a string out: no longer the page's instruction.
    std::memcpy(partition.memory.span(out_gpa(kHypercallPort), 2).data(), "\x6f\x90", 2);
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit, code_at(partition.memory, out_gpa(kHypercallPort)),
                                      kHypercallPort, partition.hypervisor));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit,
                                      code_at(partition.memory, out_gpa(kHypercallPort) + kHypercallPageOutLength),
                                      kHypercallPort, partition.hypervisor));

    // A disabled page has no instructions.
    partition.enable();
    REQUIRE(partition.hypervisor.write_msr(0, kMsrHypercall, 0));
    CHECK_FALSE(is_hypercall_page_out(OutExit(kHypercallPort).exit, code_at(partition.memory, out_gpa(kHypercallPort)), 0,
                                      partition.hypervisor));
}
