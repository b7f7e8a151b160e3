#include "arch/x86_64/time.h"

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest::time {
namespace {

// Set once by the boot CPU before any other CPU or thread reads it.
struct Clock {
    uint64_t tsc_khz = 0;
    uint64_t boot_tsc = 0;
    uint64_t ns_per_tsc_q32 = 0;  // ns per TSC tick, 32.32 fixed point
    uint64_t tsc_per_ns_q32 = 0;  // TSC ticks per ns, 32.32 fixed point
} clock;

uint64_t multiply_q32(uint64_t value, uint64_t factor_q32) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(value) * factor_q32) >> 32);
}

}  // namespace

void init(uint64_t tsc_khz) {
    clock.tsc_khz = tsc_khz;
    clock.ns_per_tsc_q32 = (1000000ull << 32) / tsc_khz;
    clock.tsc_per_ns_q32 = (tsc_khz << 32) / 1000000ull;
    clock.boot_tsc = x86::rdtsc();
}

uint64_t tsc_khz() { return clock.tsc_khz; }
uint64_t tsc_to_ns(uint64_t tsc_delta) { return multiply_q32(tsc_delta, clock.ns_per_tsc_q32); }
uint64_t ns_to_tsc(uint64_t ns) { return multiply_q32(ns, clock.tsc_per_ns_q32); }
uint64_t ns_to_tsc_absolute(uint64_t now_ns_value) { return clock.boot_tsc + ns_to_tsc(now_ns_value); }
uint64_t now_ns() { return tsc_to_ns(x86::rdtsc() - clock.boot_tsc); }

void spin_for_ns(uint64_t ns) {
    const uint64_t end = x86::rdtsc() + ns_to_tsc(ns);
    while (x86::rdtsc() < end) x86::pause();
}

}  // namespace hvkvm::guest::time
