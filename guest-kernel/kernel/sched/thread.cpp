// Thread lifecycle: creation (a stack prepared to enter thread_start), exit, join and detach,
// sleeping and yielding.
#include <new>

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/panic.h"
#include "kernel/sched/scheduler.h"
#include "kernel/sched/scheduler_internal.h"
#include "kernel/sched/thread.h"
#include "arch/x86_64/time.h"
#include "kernel/sync/cross_call.h"
#include "mm/heap.h"
#include "mm/node_topology.h"

extern "C" char thread_entry_trampoline[];

namespace hvkvm::guest::sched {
namespace {

// Registers popped by switch_context before it returns into the trampoline.
constexpr uint32_t kSavedRegisters = 6;

// Thread ids and the lock for exit/join handshakes: one per VM.
struct ThreadRegistry {
    uint32_t next_id = 1;
    SpinLock exit_lock;
} registry;

void copy_name(char (&destination)[32], const char* source) {
    size_t i = 0;
    for (; source && source[i] && i + 1 < sizeof destination; ++i) destination[i] = source[i];
    destination[i] = '\0';
}

void destroy(Thread* thread) {
    mm::free_stack(thread->stack);
    thread->~Thread();
    mm::free(thread);
}

// The Thread object on its ideal node, like the stack.
Thread* allocate_thread(uint32_t node) {
    void* memory = mm::allocate_on_node(sizeof(Thread), node, alignof(Thread));
    return memory ? new (memory) Thread : nullptr;
}

void wake_sleeper(Timer& timer) { wake_up(static_cast<Thread*>(timer.context)); }

}  // namespace

// The first code a new thread runs (via thread_entry_trampoline), with interrupts disabled.
extern "C" [[noreturn]] void thread_start(Thread* previous) {
    finish_switch(previous);
    platform::enable_interrupts();
    Thread* self = current_thread();
    self->entry(self->argument);
    exit_thread();
}

void finish_switch(Thread* previous) {
    // Decide before releasing `previous`: once on_cpu is clear, a joiner may free it.
    const bool reap_here = previous->state == ThreadState::kDead && previous->reap_on_switch;
    if (reap_here) {
        previous->on_cpu = false;  // nobody else refers to a dead detached thread
        push_zombie(*previous);
        return;
    }
    __atomic_store_n(&previous->on_cpu, false, __ATOMIC_RELEASE);
}

void reap_zombies() {
    while (Thread* zombie = pop_zombie()) destroy(zombie);
}

Thread* create_thread(void (*entry)(void*), void* argument, const ThreadOptions& options) {
    if (options.ideal_cpu != kAnyCpu && options.ideal_cpu >= abi::kMaxVcpus) return nullptr;
    if (options.affinity == 0) return nullptr;
    const uint32_t ideal_cpu = options.ideal_cpu == kAnyCpu ? this_cpu().index : options.ideal_cpu;
    const uint32_t ideal_node = mm::node_of_cpu(ideal_cpu);
    Thread* thread = allocate_thread(ideal_node);
    if (!thread) return nullptr;
    if (!mm::allocate_stack(options.stack_bytes, thread->stack, ideal_node)) {
        thread->~Thread();
        mm::free(thread);
        return nullptr;
    }
    copy_name(thread->name, options.name);
    thread->entry = entry;
    thread->argument = argument;
    thread->affinity = options.affinity;
    thread->ideal_cpu = ideal_cpu;
    thread->ideal_node = ideal_node;
    thread->last_cpu = thread->ideal_cpu;
    thread->id = __atomic_fetch_add(&registry.next_id, 1, __ATOMIC_RELAXED);

    // The stack as switch_context leaves it: six callee-saved registers, then the return address.
    auto* top = reinterpret_cast<uint64_t*>(thread->stack.top);
    top[-1] = reinterpret_cast<uint64_t>(thread_entry_trampoline);
    for (uint32_t i = 2; i <= kSavedRegisters + 1; ++i) top[-static_cast<int>(i)] = 0;
    thread->saved_rsp = reinterpret_cast<uint64_t>(top - (kSavedRegisters + 1));

    thread->state = ThreadState::kBlocked;
    wake_up(thread);
    return thread;
}

void exit_thread() {
    platform::disable_interrupts();
    Thread* self = current_thread();
    if (!self->mapped_memory.empty())
        panic("thread %s exited with %lu mapped memory region(s) still mapped", self->name, self->mapped_memory.size());
    registry.exit_lock.lock();
    self->exited = true;
    self->reap_on_switch = self->detached;
    Thread* joiner = self->joiner;
    self->state = ThreadState::kDead;
    registry.exit_lock.unlock();
    if (joiner) wake_up(joiner);
    schedule();
    panic("exited thread %s was scheduled again", self->name);
}

void join(Thread* thread) {
    {
        platform::InterruptsDisabled no_interrupts;
        registry.exit_lock.lock();
        if (thread->joiner || thread->detached) panic("thread %s joined twice or after detach", thread->name);
        thread->joiner = current_thread();
        while (!thread->exited) {
            block_and_unlock(registry.exit_lock);
            registry.exit_lock.lock();
        }
        registry.exit_lock.unlock();
    }
    while (__atomic_load_n(&thread->on_cpu, __ATOMIC_ACQUIRE)) x86::pause();  // its last switch-out
    destroy(thread);
}

void detach(Thread* thread) {
    platform::InterruptsDisabled no_interrupts;
    registry.exit_lock.lock();
    const bool already_exited = thread->exited;
    thread->detached = true;
    registry.exit_lock.unlock();
    if (already_exited) {
        // It is dead but may still be finishing its switch-out; then it is ours to free.
        while (__atomic_load_n(&thread->on_cpu, __ATOMIC_ACQUIRE)) x86::pause();
        destroy(thread);
    }
}

bool set_ideal_processor(Thread* thread, uint32_t cpu) {
    if (cpu >= smp::configured_cpu_count()) return false;
    const uint32_t node = mm::node_of_cpu(cpu);
    IrqSpinLockGuard guard(thread->memory_lock);
    __atomic_store_n(&thread->ideal_cpu, cpu, __ATOMIC_RELAXED);
    __atomic_store_n(&thread->ideal_node, node, __ATOMIC_RELAXED);
    if (thread == current_thread()) this_cpu().memory_node = node;  // interrupts are off: no switch now
    for (mm::MappedRegion* region = thread->mapped_memory.front(); region; region = thread->mapped_memory.next_of(*region))
        mm::set_region_home(*region, node);
    return true;
}

bool map_thread_memory(mm::MappedRegion& region, uint64_t bytes) {
    Thread* self = current_thread();
    if (!mm::map_region(region, bytes, __atomic_load_n(&self->ideal_node, __ATOMIC_RELAXED))) return false;
    IrqSpinLockGuard guard(self->memory_lock);
    self->mapped_memory.push_back(region);
    // The ideal node may have moved while the pages were mapped: the region follows the thread.
    if (mm::region_home(region) != self->ideal_node) mm::set_region_home(region, self->ideal_node);
    return true;
}

void unmap_thread_memory(mm::MappedRegion& region) {
    Thread* self = current_thread();
    {
        IrqSpinLockGuard guard(self->memory_lock);
        self->mapped_memory.remove(region);
    }
    mm::unmap_region(region);
}

void yield() {
    platform::InterruptsDisabled no_interrupts;
    schedule();
}

void sleep_ns(uint64_t ns) {
    Thread* self = current_thread();
    Timer timer;
    timer.callback = wake_sleeper;
    timer.context = self;
    SpinLock lock;  // nobody else takes it: the timer callback wakes without it
    platform::InterruptsDisabled no_interrupts;
    lock.lock();
    arm_timer(timer, time::now_ns() + ns);
    block_and_unlock(lock);
    cancel_timer(timer);  // woken by the timer in every case; waits out a callback still running
}

}  // namespace hvkvm::guest::sched
