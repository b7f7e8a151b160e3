// Helpers for in-guest tests that need several threads.
#pragma once

#include <stdint.h>

#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"

namespace hvkvm::guest::test {

enum class Placement {
    kOnePerCpu,  // thread i pinned to online CPU i % count
    kSameCpu,    // all pinned to one CPU (the highest online), to force time sharing
    kFree,       // no pinning; the scheduler places them
};

// The index-th online CPU (wrapping), and the highest online CPU.
uint32_t nth_online_cpu(uint32_t index);
uint32_t last_online_cpu();

// Runs body(context, i) for i in [0, count) in `count` threads placed as asked, and waits for
// all of them. Returns false if a thread could not be created.
bool run_in_threads(uint32_t count, Placement placement, void (*body)(void* context, uint32_t index), void* context);

}  // namespace hvkvm::guest::test
