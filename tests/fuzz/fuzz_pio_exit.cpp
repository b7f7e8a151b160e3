// libFuzzer target: the PIO exit decoder (vmm/exits/pio_exit), the guest code reader
// (vmm/exits/guest_code) and the decision that an exit is the hypercall page's own `out`
// (vmm/hypercalls/page_exit), fed a kvm_run exit record, register values (RIP, DX, paging
// registers) and guest memory (page tables, code, the hypercall page) the fuzzer corrupts at will.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/kvm.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "exits/guest_code.h"
#include "exits/pio_exit.h"
#include "fuzz_input.h"
#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypercall_page.h"
#include "hypercalls/hypervisor.h"
#include "hypercalls/page_exit.h"

using namespace hvkvm::vmm;
using namespace hvkvm::abi::hv;

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

constexpr uint64_t kPml4 = 0x10000, kPdpt = 0x11000, kPd = 0x12000;

// The VMM's kind of boot map (identity, 2 MiB pages over all of RAM): a sane start for corruption.
void identity_map(GuestMemory& memory) {
    memory.object_at<uint64_t>(kPml4) = kPdpt | 0x7;
    memory.object_at<uint64_t>(kPdpt) = kPd | 0x7;
    for (uint64_t page = 0; page < hvkvm::fuzz::kRamBytes >> 21; ++page)
        memory.object_at<uint64_t>(kPd + page * 8) = (page << 21) | 0x87;
}

PagingState paging_registers(FuzzedDataProvider& in) {
    PagingState sane{1ull << 31, kPml4, 0, 1ull << 10, true};
    if (in.ConsumeBool()) return sane;
    return {in.ConsumeIntegral<uint64_t>(), in.ConsumeIntegral<uint64_t>(), in.ConsumeIntegral<uint64_t>(),
            in.ConsumeIntegral<uint64_t>(), in.ConsumeBool()};
}

// A run area of a fuzzer-chosen size whose kvm_run (if it fits) holds a mostly plausible I/O exit.
std::vector<uint8_t> run_area(FuzzedDataProvider& in) {
    std::vector<uint8_t> area(in.ConsumeIntegralInRange<size_t>(0, 3 * 4096), 0);
    if (area.size() >= sizeof(kvm_run)) {
        kvm_run run{};
        run.exit_reason = in.ConsumeBool() ? KVM_EXIT_IO : in.ConsumeIntegral<uint32_t>();
        run.io.direction = in.ConsumeIntegralInRange<uint8_t>(0, 2);
        run.io.size = in.PickValueInArray<uint8_t>({1, 2, 4, 0, 3, 8, 255});
        run.io.port = in.ConsumeBool() ? in.PickValueInArray({kHypercallPort, kSignalEventPort, kKickVpPort})
                                       : in.ConsumeIntegral<uint16_t>();
        run.io.count = in.ConsumeBool() ? 1 : in.ConsumeIntegral<uint32_t>();
        run.io.data_offset = in.ConsumeBool() ? 4096 : in.ConsumeIntegral<uint64_t>();
        std::memcpy(area.data(), &run, sizeof run);
    }
    const auto tail = in.ConsumeBytes<uint8_t>(64);
    if (!tail.empty() && area.size() >= 4096 + tail.size()) std::memcpy(area.data() + 4096, tail.data(), tail.size());
    return area;
}

std::optional<uint16_t> exit_port_of(const std::vector<uint8_t>& area) {
    if (area.size() < sizeof(kvm_run)) return std::nullopt;
    return reinterpret_cast<const kvm_run*>(area.data())->io.port;
}

void check_exit(const PioExit& exit, const std::vector<uint8_t>& area) {
    require(exit.size == 1 || exit.size == 2 || exit.size == 4);
    require(exit.count >= 1);
    require(exit.data.size() == uint64_t{exit.count} * exit.size);
    require(exit.data.data() >= area.data() && exit.data.data() + exit.data.size() <= area.data() + area.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    GuestMemory& memory = hvkvm::fuzz::guest_memory();
    hvkvm::fuzz::clear(memory);
    identity_map(memory);
    Hypervisor hypervisor(HypervisorConfig{2, 0}, memory);
    if (in.ConsumeBool()) {
        hypervisor.write_msr(0, kMsrGuestOsId, 1);
        hypervisor.write_msr(0, kMsrHypercall, (hvkvm::fuzz::guest_address(in, memory) & ~0xfffull) | kHypercallEnable);
    }
    for (int chunk = in.ConsumeIntegralInRange(0, 4); chunk > 0; --chunk) hvkvm::fuzz::write_guest_bytes(in, memory);

    const std::vector<uint8_t> area = run_area(in);
    const PagingState paging = paging_registers(in);
    const auto dx = in.ConsumeIntegral<uint16_t>();
    // Often RIP on (or just past) the page's own `out`, where the interesting decisions are.
    uint64_t rip = hvkvm::fuzz::guest_address(in, memory);
    if (exit_port_of(area) && in.ConsumeBool())
        if (const auto page_out = hypervisor.page_out_gpa(*exit_port_of(area)))
            rip = *page_out + (in.ConsumeBool() ? kHypercallPageOutLength : 0);

    const auto exit = decode_pio_exit(std::span<uint8_t>(const_cast<uint8_t*>(area.data()), area.size()));
    if (exit) check_exit(*exit, area);

    const GuestCode code = read_guest_code(memory, paging, rip);
    require(code.length <= kMaxInstructionLength);
    const auto instruction = decode_pio_instruction(code.view());
    if (instruction) {
        require(instruction->length >= 1 && instruction->length <= code.length);
        require(instruction->size == 1 || instruction->size == 2 || instruction->size == 4);
    }
    if (exit && is_hypercall_page_out(*exit, code, dx, hypervisor)) {
        require(exit->is_single(PioDirection::kOut, 4) && is_hypercall_page_port(exit->port));
        const auto page_out = hypervisor.page_out_gpa(exit->port);
        require(page_out && (code.gpa == *page_out || code.gpa == *page_out + kHypercallPageOutLength));
        if (instruction && explains(*instruction, *exit, dx)) require(!instruction->string);
    }
    // And the instruction decoder on raw bytes, without a page walk in front of it.
    const auto raw = in.ConsumeRemainingBytes<uint8_t>();
    if (const auto decoded = decode_pio_instruction(raw)) require(decoded->length <= std::min<size_t>(raw.size(), 15));
    return 0;
}
