// The PIO exit decoder (vmm/exits/pio_exit.h): KVM's exit record and the instruction bytes.
#include <linux/kvm.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "exits/pio_exit.h"

using namespace hvkvm::vmm;

namespace {

// A run area like the vCPU's mapping: kvm_run, then the data page at `data_offset`.
struct RunArea {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(3 * 4096, 0);
    kvm_run& run() { return *reinterpret_cast<kvm_run*>(bytes.data()); }
    RunArea& io(uint8_t direction, uint8_t size, uint16_t port, uint32_t count, uint64_t data_offset = 4096) {
        run().exit_reason = KVM_EXIT_IO;
        run().io.direction = direction;
        run().io.size = size;
        run().io.port = port;
        run().io.count = count;
        run().io.data_offset = data_offset;
        return *this;
    }
    std::optional<PioExit> decode() { return decode_pio_exit(bytes); }
};

std::optional<PioInstruction> decode(std::vector<uint8_t> bytes) { return decode_pio_instruction(bytes); }

}  // namespace

TEST_CASE("a PIO exit record is decoded with its data inside the run area", "[pio]") {
    RunArea area;
    area.io(KVM_EXIT_IO_OUT, 4, 0xe4, 1);
    std::memcpy(area.bytes.data() + 4096, "\x00\x02\x00\x00", 4);
    const auto exit = area.decode();
    REQUIRE(exit);
    CHECK(exit->port == 0xe4);
    CHECK(exit->size == 4);
    CHECK(exit->direction == PioDirection::kOut);
    CHECK(exit->count == 1);
    CHECK(exit->data.data() == area.bytes.data() + 4096);
    CHECK(exit->data.size() == 4);
    CHECK(exit->is_single(PioDirection::kOut, 4));
    CHECK_FALSE(exit->is_single(PioDirection::kIn, 4));
    CHECK_FALSE(exit->is_single(PioDirection::kOut, 2));

    area.io(KVM_EXIT_IO_IN, 2, 0x3f8, 2048);
    const auto batch = area.decode();
    REQUIRE(batch);
    CHECK(batch->data.size() == 4096);
    CHECK_FALSE(batch->is_single(PioDirection::kIn, 2));
}

TEST_CASE("malformed PIO exit records are refused", "[pio]") {
    RunArea area;
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 3, 0x80, 1).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 8, 0x80, 1).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 1, 0x80, 0).decode());
    CHECK_FALSE(area.io(2, 1, 0x80, 1).decode());
    area.io(KVM_EXIT_IO_OUT, 1, 0x80, 1).run().exit_reason = KVM_EXIT_MMIO;
    CHECK_FALSE(area.decode());
    CHECK_FALSE(decode_pio_exit(std::span<uint8_t>(area.bytes.data(), sizeof(kvm_run) - 1)));
}

TEST_CASE("PIO exit data must end inside the run area: exact fit accepted, one element past refused", "[pio]") {
    RunArea area;
    const uint64_t size = area.bytes.size();
    CHECK(area.io(KVM_EXIT_IO_IN, 4, 0x80, 1024, size - 4096).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_IN, 4, 0x80, 1025, size - 4096).decode());
    CHECK(area.io(KVM_EXIT_IO_OUT, 1, 0x80, 1, size - 1).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 1, 0x80, 1, size).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 4, 0x80, 0xffffffff, 4096).decode());
    CHECK_FALSE(area.io(KVM_EXIT_IO_OUT, 1, 0x80, 1, ~uint64_t{0}).decode());
}

TEST_CASE("plain IN and OUT decode with their size and port", "[pio]") {
    const auto out_imm = decode({0xe7, 0xe0});
    REQUIRE(out_imm);
    CHECK_FALSE(out_imm->string);
    CHECK(out_imm->direction == PioDirection::kOut);
    CHECK(out_imm->size == 4);
    CHECK(out_imm->immediate_port == 0xe0);
    CHECK(out_imm->length == 2);

    CHECK(decode({0x66, 0xe7, 0xe4})->size == 2);
    CHECK(decode({0xe6, 0xe8})->size == 1);
    CHECK(decode({0xe4, 0x80})->direction == PioDirection::kIn);
    CHECK(decode({0xe5, 0x80})->size == 4);
    const auto out_dx = decode({0xef});
    REQUIRE(out_dx);
    CHECK_FALSE(out_dx->immediate_port);
    CHECK(out_dx->length == 1);
    CHECK(decode({0xec})->size == 1);
    CHECK(decode({0x66, 0xed})->size == 2);
    CHECK_FALSE(decode({0xf3, 0xe7, 0xe0})->repeated);  // REP means nothing to a plain OUT
}

TEST_CASE("string I/O is recognised with every prefix combination", "[pio]") {
    const auto rep_outsl = decode({0xf3, 0x6f});
    REQUIRE(rep_outsl);
    CHECK(rep_outsl->string);
    CHECK(rep_outsl->repeated);
    CHECK(rep_outsl->size == 4);
    CHECK(rep_outsl->length == 2);
    CHECK_FALSE(decode({0x6e})->repeated);
    CHECK(decode({0x6e})->size == 1);
    CHECK(decode({0x66, 0xf3, 0x6f})->size == 2);
    CHECK(decode({0xf3, 0x66, 0x6f})->size == 2);
    CHECK(decode({0xf2, 0x6c})->repeated);
    CHECK(decode({0x6d})->direction == PioDirection::kIn);
    CHECK(decode({0x66, 0x48, 0x6f})->size == 4);  // REX.W right before the opcode wins over 0x66
    CHECK(decode({0x48, 0x66, 0x6f})->size == 2);  // a REX followed by a prefix is ignored
    CHECK(decode({0x67, 0x3e, 0xf3, 0x41, 0x6f})->string);
}

TEST_CASE("bytes that are not an I/O instruction are refused", "[pio]") {
    CHECK_FALSE(decode({}));
    CHECK_FALSE(decode({0x90}));
    CHECK_FALSE(decode({0xc3}));
    CHECK_FALSE(decode({0xf0, 0xe7, 0xe0}));  // LOCK: #UD
    CHECK_FALSE(decode({0xe7}));              // immediate cut off
    CHECK_FALSE(decode({0x66, 0x66}));        // prefixes only
    std::vector<uint8_t> longest(kMaxInstructionLength - 1, 0x3e);
    longest.push_back(0xef);
    CHECK(decode(longest));                   // 15 bytes: the limit
    longest.insert(longest.begin(), 0x3e);
    CHECK_FALSE(decode(longest));             // 16 bytes: #GP, never an exit
    std::vector<uint8_t> immediate_at_limit(kMaxInstructionLength - 2, 0x3e);
    immediate_at_limit.push_back(0xe7);
    immediate_at_limit.push_back(0xe0);
    CHECK(decode(immediate_at_limit));
    immediate_at_limit.insert(immediate_at_limit.begin(), 0x3e);
    CHECK_FALSE(decode(immediate_at_limit));
}

TEST_CASE("an instruction explains an exit only with the same direction, size and port", "[pio]") {
    RunArea area;
    const PioExit exit = *area.io(KVM_EXIT_IO_OUT, 4, 0xe4, 1).decode();
    CHECK(explains(*decode({0xe7, 0xe4}), exit, 0));
    CHECK_FALSE(explains(*decode({0xe7, 0xe0}), exit, 0));
    CHECK_FALSE(explains(*decode({0xe6, 0xe4}), exit, 0));
    CHECK_FALSE(explains(*decode({0xe5, 0xe4}), exit, 0));
    CHECK(explains(*decode({0xef}), exit, 0xe4));
    CHECK_FALSE(explains(*decode({0xef}), exit, 0xe8));
    CHECK(explains(*decode({0xf3, 0x6f}), exit, 0xe4));
    const PioExit batch = *area.io(KVM_EXIT_IO_IN, 1, 0x80, 16).decode();
    CHECK(explains(*decode({0xf3, 0x6c}), batch, 0x80));
    CHECK_FALSE(explains(*decode({0xec}), batch, 0x80));  // a plain IN moves one element
}
