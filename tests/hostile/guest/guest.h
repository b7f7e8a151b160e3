// The hostile guest's runtime: just enough of a kernel to misbehave on purpose. Every vCPU runs
// with interrupts disabled on the VMM's identity page tables, converted to PVM mode on PVM hosts
// (the conversion recipe of docs/architecture.md), with an IDT whose only job is to survive the
// faults a case provokes: a probe (probe_* below) records the vector and resumes after the
// faulting instruction; any other exception is reported to the VMM as a crash.
//
// A case is chosen by the kernel command line (`case=NAME`, see cases.h) and ends the run through
// the debug-exit port: 0 when every check passed, 1 when one failed, or by crashing or hanging on
// purpose. Independent of guest-kernel/: it shares only the ABI headers.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <initializer_list>  // freestanding: lets cases loop over braced lists

#include "hvkvm/abi/boot.h"
#include "hvkvm/abi/hypercall.h"

namespace hostile {

namespace abi = hvkvm::abi;

inline constexpr uint32_t kMaxCpus = abi::kMaxVcpus;
inline constexpr uint32_t kNoFault = 0xffffffff;  // what a probe returns when nothing faulted
inline constexpr uint64_t kPageSize = abi::kPageSize;

// ---------------------------------------------------------------------------------------------
// Instructions
// ---------------------------------------------------------------------------------------------
inline void outb(uint16_t port, uint8_t value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory"); }
inline void outw(uint16_t port, uint16_t value) { __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port) : "memory"); }
inline void outl(uint16_t port, uint32_t value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory"); }
inline uint8_t inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}
inline uint16_t inw(uint16_t port) {
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}
inline uint32_t inl(uint16_t port) {
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}
inline uint64_t rdtsc() {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t{high} << 32) | low;
}
inline void cpu_relax() { __asm__ volatile("pause" ::: "memory"); }
inline uint64_t read_cr3() {
    uint64_t value;
    __asm__ volatile("mov %%cr3, %0" : "=r"(value));
    return value;
}
// Halts this vCPU for good: interrupts are disabled (and on PVM hosts VIF is 0), so nothing wakes
// it; only the VMM stopping the run ends the wait.
[[noreturn]] void halt_forever();

// ---------------------------------------------------------------------------------------------
// The machine as the VMM described it
// ---------------------------------------------------------------------------------------------
const abi::BootInfo& boot_info();
uint32_t vcpu_count();
uint32_t this_cpu();
uint64_t ram_end_below_hole();  // one past the last byte of RAM below the 3 GiB MMIO hole
uint64_t tsc_khz();
// RAM no one else uses: from 4 MiB above the guest image to the end of RAM below the MMIO hole.
struct Scratch {
    uint64_t base;
    uint64_t end;
};
Scratch scratch_memory();
// The value of `key=` on the command line (up to the next space), or `fallback`.
const char* command_line_value(const char* key, const char* fallback);
bool command_line_equals(const char* key, const char* value);
uint64_t command_line_number(const char* key, uint64_t fallback);

// ---------------------------------------------------------------------------------------------
// Console (COM1, one PIO exit per byte) and verdicts
// ---------------------------------------------------------------------------------------------
// printf-like, one line prefixed "hostile: ": %s, %u (64-bit), %x (64-bit hex), %c.
void say(const char* format, ...);
// Puts COM1 back the way the VMM starts it (8N1, no divisor latch, no loopback), after a case
// has written garbage to its registers.
void reset_console();
// Records a failed check (the case then exits 1) and says why.
void check(bool ok, const char* format, ...);
bool any_check_failed();
[[noreturn]] void exit_vm(uint32_t code);  // the debug-exit port; never returns

// ---------------------------------------------------------------------------------------------
// Fault probes: run one instruction that may fault; return its exception vector or kNoFault.
// ---------------------------------------------------------------------------------------------
uint32_t probe_rdmsr(uint32_t msr, uint64_t& value);
uint32_t probe_wrmsr(uint32_t msr, uint64_t value);
uint32_t probe_read(uint64_t address, uint32_t size, uint64_t& value);  // size 1, 2, 4 or 8
uint32_t probe_write(uint64_t address, uint32_t size, uint64_t value);
// For probes written in place: label the instruction 1: and its successor 2:, append
// HOSTILE_FIXUP, and bracket it with begin_probe()/end_probe(). A string instruction that faults
// part-way resumes at 2: with RCX/RSI/RDI as they were at the fault.
#define HOSTILE_FIXUP ".pushsection .fixups, \"a\"\n.balign 8\n.quad 1b, 2b\n.popsection\n"
void begin_probe();
uint32_t end_probe();  // the vector of the fault since begin_probe(), or kNoFault
// Calls `code` (which must end in `ret` if it returns at all); faults inside it are caught.
uint32_t probe_call(uint64_t code);
// The GPA of a 2 MiB window through which probes reach `gpa` (any physical address, RAM or not):
// the guest's own page-table entry, on top of the VMM's identity map.
uint64_t map_physical_window(uint64_t gpa);

// ---------------------------------------------------------------------------------------------
// Other vCPUs
// ---------------------------------------------------------------------------------------------
using CpuWork = void (*)(uint32_t cpu);
// Asks the VMM to start vCPU `index` at the AP entry with `work` (the request lives in the
// guest's own memory at `request`); returns the status the VMM wrote. A started AP runs `work`,
// then halts for good.
abi::VcpuStartStatus start_vcpu(abi::VcpuStartRequest& request, uint32_t index, CpuWork work);
abi::VcpuStartRequest make_start_request(uint32_t index, CpuWork work);
// Starts every AP with `work` and waits until all are running it.
void start_all_aps(CpuWork work);
uint32_t online_cpus();

// A reusable spin barrier for `participants` vCPUs.
class Barrier {
public:
    explicit Barrier(uint32_t participants) : participants_(participants) {}
    void arrive_and_wait();

private:
    uint32_t participants_;
    uint32_t arrived_ = 0;
    uint32_t generation_ = 0;
};

// Spins politely: pause, and on a busy host let the VMM yield this vCPU's thread
// (NotifyLongSpinWait) once the hypercall page is up.
void spin_wait_hint(uint64_t iteration);

// Spins (politely, see spin_wait_hint) until `done()` is true.
template <typename Condition>
void spin_until(Condition done) {
    for (uint64_t i = 0; !done(); ++i) spin_wait_hint(i);
}
// Until `counter` (incremented by other vCPUs) reaches `target`.
void wait_for_count(const uint32_t& counter, uint32_t target);

template <typename T>
T atomic_load(const T& value) {
    return __atomic_load_n(&value, __ATOMIC_ACQUIRE);
}
template <typename T>
void atomic_store(T& target, T value) {
    __atomic_store_n(&target, value, __ATOMIC_RELEASE);
}
template <typename T>
T atomic_add(T& target, T delta) {
    return __atomic_add_fetch(&target, delta, __ATOMIC_ACQ_REL);
}

// Freestanding memory helpers (also what the compiler calls).
extern "C" void* memcpy(void* destination, const void* source, size_t size);
extern "C" void* memset(void* destination, int value, size_t size);
extern "C" int memcmp(const void* a, const void* b, size_t size);
bool strings_equal(const char* a, const char* b);

}  // namespace hostile
