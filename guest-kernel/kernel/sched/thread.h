// Kernel threads. Every thread has an ideal processor (where the scheduler places it when it
// becomes runnable, if that CPU is free or nothing better is) and so an ideal NUMA node (the
// processor's node), and an affinity mask (the CPUs it may run on at all). Its memory comes from
// its ideal node even while it runs elsewhere: its Thread object, its stack and its page tables
// at creation, its allocations while it runs (mm/page_allocator.h), and the regions it maps
// (map_thread_memory), which follow it when its ideal processor moves to another node.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/sched/timer.h"
#include "lib/intrusive_list.h"
#include "kernel/sync/spinlock.h"
#include "mm/migration.h"
#include "mm/paging.h"

namespace hvkvm::guest::sched {

inline constexpr uint32_t kAnyCpu = 0xffffffff;
inline constexpr uint64_t kAllCpus = ~0ull;
inline constexpr size_t kDefaultStackBytes = 16 * 1024;

enum class ThreadState : uint32_t {
    kRunnable,  // on a run queue
    kRunning,   // on a CPU
    kBlocked,   // waiting (wait queue, sleep); only a wake-up makes it runnable
    kDead,      // exited; resources go when joined (or by the reaper, if detached)
};

struct ThreadOptions {
    const char* name = "thread";
    uint32_t ideal_cpu = kAnyCpu;    // kAnyCpu: the creating CPU
    uint64_t affinity = kAllCpus;    // bit i: may run on CPU i
    size_t stack_bytes = kDefaultStackBytes;
};

struct Thread {
    uint64_t saved_rsp = 0;          // context: callee-saved registers live on the stack below it
    ListNode queue_link;             // run queue membership
    ThreadState state = ThreadState::kRunnable;
    bool on_cpu = false;             // set while a CPU runs it or is still saving its context
    bool detached = false;
    bool is_idle = false;
    bool going_home = false;         // queued on its ideal node after running away: not to be stolen
    uint32_t id = 0;
    uint32_t ideal_cpu = 0;
    uint32_t ideal_node = 0;         // the ideal processor's node
    uint32_t last_cpu = 0;
    uint64_t affinity = kAllCpus;
    char name[32] = {};
    mm::KernelStack stack;
    void (*entry)(void*) = nullptr;
    void* argument = nullptr;
    // Accounting.
    uint64_t runtime_ns = 0;
    uint64_t switched_in_ns = 0;
    uint64_t switches = 0;
    uint64_t migrations = 0;
    // Exit handshake, under the thread registry's lock: `exited` once it has exited (join()
    // waits for it); `reap_on_switch` records at exit whether it was detached then, so that its
    // final switch-out (and nobody else) frees it.
    bool exited = false;
    bool reap_on_switch = false;
    Thread* joiner = nullptr;
    // Regions it mapped (map_thread_memory); they follow its ideal node. Under memory_lock, which
    // also orders changes of the ideal processor.
    SpinLock memory_lock;
    IntrusiveList<mm::MappedRegion, &mm::MappedRegion::owner_link> mapped_memory;
};

// Creates a runnable thread; nullptr if memory is exhausted or the options are invalid.
Thread* create_thread(void (*entry)(void*), void* argument, const ThreadOptions& options = {});
// Waits for the thread to exit and frees it.
void join(Thread* thread);
// The thread frees itself when it exits.
void detach(Thread* thread);

Thread* current_thread();
// Moves the thread's ideal processor (and so its ideal node: where its memory comes from from
// now on, and where the regions it mapped migrate to). For a thread running on another CPU the
// new node applies from its next switch. False if `cpu` is not a configured vCPU.
bool set_ideal_processor(Thread* thread, uint32_t cpu);
// Maps `bytes` of migratable memory (mm/migration.h) for the current thread, at its ideal node;
// the region must be unmapped (unmap_thread_memory) by the same thread before it exits.
bool map_thread_memory(mm::MappedRegion& region, uint64_t bytes);
void unmap_thread_memory(mm::MappedRegion& region);
void yield();
void sleep_ns(uint64_t ns);
[[noreturn]] void exit_thread();

}  // namespace hvkvm::guest::sched
