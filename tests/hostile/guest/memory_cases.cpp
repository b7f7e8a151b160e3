// MMIO and MSR abuse: accesses where no device and no RAM is (the MMIO hole, physical addresses
// above RAM), string and locked instructions on MMIO, and every synthetic MSR with garbage.
#include "cases.h"
#include "guest.h"
#include "hvkvm/abi/synic.h"

namespace hostile {
namespace {

using namespace hvkvm::abi::hv;

constexpr uint32_t kSizes[] = {1, 2, 4, 8};
constexpr uint32_t kGeneralProtection = 13, kPageFault = 14;

uint64_t all_ones(uint32_t size) { return size == 8 ? ~0ull : (1ull << (8 * size)) - 1; }

// Addresses in the 32-bit MMIO hole that no device claims (the in-kernel LAPIC and IOAPIC pages
// are KVM's, not the VMM's), including the last bytes below 4 GiB.
constexpr uint64_t kHoleAddresses[] = {0xc0000000, 0xc0000ffc, 0xd0000000, 0xdeadbee8, 0xfebffff8,
                                       0xfec00100, 0xfed00000, 0xfee01000, 0xfffff000, 0xfffffff8};

void mmio_hole() {
    for (uint64_t address : kHoleAddresses) {
        for (uint32_t size : kSizes) {
            uint64_t value = 0;
            uint32_t fault = probe_read(address, size, value);
            check(fault == kNoFault && value == all_ones(size), "read%u at %x: fault %x, value %x", uint64_t{size},
                  address, uint64_t{fault}, value);
            fault = probe_write(address, size, 0x0123456789abcdefull);
            check(fault == kNoFault, "write%u at %x: fault %x", uint64_t{size}, address, uint64_t{fault});
        }
    }
    // 8 bytes from 4 GiB - 4: the upper half is not mapped (no RAM above 4 GiB in this VM), so
    // the CPU faults before touching either half.
    uint64_t value = 0;
    const uint32_t fault = probe_read(0xfffffffcull, 8, value);
    check(fault == kPageFault || (fault == kNoFault && boot_info().memory_bytes > abi::kMmioHoleStart),
          "read8 across 4 GiB: fault %x", uint64_t{fault});
}

// Physical addresses outside RAM and outside the hole, reached through the guest's own page
// tables: the VMM sees MMIO exits nobody claims (or the CPU refuses an address beyond its
// physical width with a page fault).
void mmio_beyond_ram() {
    const uint64_t ram_end = ram_end_below_hole();
    const uint64_t addresses[] = {ram_end, ram_end + 0x1ff8, 0x80000000ull, 0x100000000ull + boot_info().memory_bytes,
                                  1ull << 39, (1ull << 46) - 8, 1ull << 51};
    for (uint64_t gpa : addresses) {
        if (gpa >= abi::kMmioHoleEnd && gpa < abi::kMmioHoleEnd + boot_info().memory_bytes) continue;  // RAM
        for (uint32_t size : kSizes) {
            const uint64_t window = map_physical_window(gpa);
            uint64_t value = 0;
            const uint32_t fault = probe_read(window, size, value);
            check((fault == kNoFault && value == all_ones(size)) || fault == kPageFault,
                  "read%u of physical %x: fault %x, value %x", uint64_t{size}, gpa, uint64_t{fault}, value);
            const uint32_t write_fault = probe_write(window, size, 0xfeedfacecafebeefull);
            check(write_fault == kNoFault || write_fault == kPageFault, "write%u of physical %x: fault %x",
                  uint64_t{size}, gpa, uint64_t{write_fault});
        }
    }
}

// String instructions with MMIO on either side: each element is its own MMIO exit.
void mmio_string() {
    alignas(16) static uint8_t ram[256];
    memset(ram, 0x11, sizeof ram);
    uint64_t source = 0xd0000000, destination = reinterpret_cast<uint64_t>(ram), count = sizeof ram;
    begin_probe();
    __asm__ volatile("1: rep movsb\n2:\n" HOSTILE_FIXUP : "+S"(source), "+D"(destination), "+c"(count) : : "memory");
    uint32_t fault = end_probe();
    bool all_ones_copied = true;
    for (uint8_t byte : ram) all_ones_copied &= byte == 0xff;
    check(fault == kNoFault && count == 0 && all_ones_copied, "rep movsb from MMIO: fault %x, RCX %x", uint64_t{fault}, count);

    source = reinterpret_cast<uint64_t>(ram), destination = 0xd0001000, count = sizeof ram / 8;
    begin_probe();
    __asm__ volatile("1: rep movsq\n2:\n" HOSTILE_FIXUP : "+S"(source), "+D"(destination), "+c"(count) : : "memory");
    fault = end_probe();
    check(fault == kNoFault && count == 0, "rep movsq to MMIO: fault %x, RCX %x", uint64_t{fault}, count);

    destination = 0xd0002000, count = 512;
    begin_probe();
    __asm__ volatile("1: rep stosl\n2:\n" HOSTILE_FIXUP : "+D"(destination), "+c"(count) : "a"(0xabcdef01u) : "memory");
    fault = end_probe();
    check(fault == kNoFault && count == 0, "rep stosl to MMIO: fault %x, RCX %x", uint64_t{fault}, count);
}

// Locked read-modify-write on MMIO: KVM emulates it as a read exit and a write exit (or gives up
// with an emulation failure, which the VMM reports as a guest crash).
void mmio_atomics() {
    auto* word = reinterpret_cast<volatile uint32_t*>(0xd0003000ull);
    uint32_t value = 1;
    __asm__ volatile("lock xaddl %0, %1" : "+r"(value), "+m"(*word) : : "memory");
    check(value == 0xffffffffu, "lock xadd on MMIO returned %x", uint64_t{value});
    value = 2;
    __asm__ volatile("xchgl %0, %1" : "+r"(value), "+m"(*word) : : "memory");
    uint32_t expected = 0xffffffffu;
    __asm__ volatile("lock cmpxchgl %2, %1" : "+a"(expected), "+m"(*word) : "r"(3u) : "memory");
    say("locked operations on MMIO completed");
}

struct SyntheticMsr {
    uint32_t index;
    bool readable;
    bool writable;
};
constexpr SyntheticMsr kDocumentedMsrs[] = {
    {kMsrGuestOsId, true, true},    {kMsrHypercall, true, true},      {kMsrVpIndex, true, false},
    {kMsrTimeRefCount, true, false}, {kMsrTscFrequency, true, false}, {kMsrApicFrequency, true, false}};

SyntheticMsr lookup(uint32_t msr) {
    for (const SyntheticMsr& known : kDocumentedMsrs)
        if (known.index == msr) return known;
    return {msr, false, false};
}

// HYPERCALL gets garbage that never enables a page over the guest's own memory: a GPFN beyond
// RAM (refused), 0 (disabled), or page 0 (which the guest does not use).
uint64_t garbage_for(uint32_t msr, uint32_t round) {
    constexpr uint64_t kGarbage[] = {0, ~0ull, 1ull << 63, 0x5555555555555555ull, 0xaaaaaaaaaaaaa000ull, 1};
    const uint64_t value = kGarbage[round];
    if (msr == kMsrHypercall && value == 0xaaaaaaaaaaaaa000ull) return value | kHypercallEnable;  // not RAM
    return value;
}

// The SynIC MSRs (abi/synic.h): which garbage a write accepts. SCONTROL takes only its enable
// bit; SIEFP/SIMP refuse reserved bits 11:1 and an enabled page that is not RAM; SINTs refuse
// reserved bits, auto-EOI and an unmasked vector below 16; EOM takes anything.
bool synic_write_accepted(uint32_t msr, uint64_t value) {
    namespace synic = abi::synic;
    if (msr == synic::kMsrScontrol) return (value & ~synic::kScontrolEnable) == 0;
    if (msr == synic::kMsrSversion) return false;
    if (msr == synic::kMsrEom) return true;
    if (msr == synic::kMsrSiefp || msr == synic::kMsrSimp) {
        if (value & 0xffe) return false;
        const uint64_t page = value & ~0xfffull;
        return !(value & 1) || page < ram_end_below_hole();
    }
    if (value & synic::kSintReservedMask || value & synic::kSintAutoEoi) return false;
    return (value & synic::kSintMasked) || (value & synic::kSintVectorMask) >= synic::kSintMinimumVector;
}

bool is_synic_msr(uint32_t msr) {
    namespace synic = abi::synic;
    return (msr >= synic::kMsrScontrol && msr <= synic::kMsrEom) ||
           (msr >= synic::kMsrSint0 && msr < synic::kMsrSint0 + synic::kSintCount);
}

// Every MSR in the synthetic range is read and written with garbage: the documented ones behave
// as documented (read-only ones fault on write, HYPERCALL faults for non-RAM pages, the SynIC's
// as synic_write_accepted says), all others fault. Never a VMM error.
void msr_synthetic() {
    for (uint32_t msr = kSyntheticMsrFirst; msr <= kSyntheticMsrLast; ++msr) {
        const SyntheticMsr expected = is_synic_msr(msr) ? SyntheticMsr{msr, msr != abi::synic::kMsrEom, true} : lookup(msr);
        uint64_t value = 0;
        uint32_t fault = probe_rdmsr(msr, value);
        check((fault == kNoFault) == expected.readable, "rdmsr %x: fault %x", uint64_t{msr}, uint64_t{fault});
        for (uint32_t round = 0; round < 6; ++round) {
            const uint64_t garbage = garbage_for(msr, round);
            fault = probe_wrmsr(msr, garbage);
            const bool refused_page = msr == kMsrHypercall && (garbage & kHypercallEnable) && garbage != 1;
            const bool should_work = is_synic_msr(msr) ? synic_write_accepted(msr, garbage) : expected.writable && !refused_page;
            check((fault == kNoFault) == should_work, "wrmsr %x = %x: fault %x", uint64_t{msr}, garbage, uint64_t{fault});
            if (fault != kNoFault) check(fault == kGeneralProtection, "wrmsr %x: vector %x, not #GP", uint64_t{msr}, uint64_t{fault});
        }
    }
    // Lock the HYPERCALL MSR (disabled), after which writes fault.
    check(probe_wrmsr(kMsrHypercall, kHypercallLocked) == kNoFault, "locking HYPERCALL");
    check(probe_wrmsr(kMsrHypercall, 0) == kGeneralProtection, "HYPERCALL written after locking");
}

// MSRs just outside the synthetic range and far from anything KVM knows: #GP, from KVM or the VMM.
void msr_unknown() {
    constexpr uint32_t kMsrs[] = {0x3fffffff, 0x40000100, 0x400001ff, 0x4b564dff, 0xc0011234, 0xdeadbeef, 0xffffffff};
    for (uint32_t msr : kMsrs) {
        uint64_t value = 0;
        check(probe_rdmsr(msr, value) == kGeneralProtection, "rdmsr %x did not #GP", uint64_t{msr});
        check(probe_wrmsr(msr, 0x1234) == kGeneralProtection, "wrmsr %x did not #GP", uint64_t{msr});
    }
}

const Case kCases[] = {
    {"mmio-hole", mmio_hole},       {"mmio-beyond-ram", mmio_beyond_ram}, {"mmio-string", mmio_string},
    {"mmio-atomics", mmio_atomics}, {"msr-synthetic", msr_synthetic},     {"msr-unknown", msr_unknown},
};

}  // namespace

const CaseGroup kMemoryCases = group(kCases);

}  // namespace hostile
