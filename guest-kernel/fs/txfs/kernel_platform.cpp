#include "fs/txfs/kernel_platform.h"

#include <new>

#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "kernel/sched/wait_queue.h"
#include "mm/heap.h"

namespace hvkvm::guest::fs {
namespace {

// Large allocations are the core's 4 KiB block buffers, which go straight to the disk: aligning
// them to a sector keeps the block layer from refusing them (DiskDevice would bounce them).
constexpr size_t kSectorAlignedFrom = 512;

class KernelMutex final : public txfs::Mutex {
public:
    void lock() override { mutex.lock(); }
    void unlock() override { mutex.unlock(); }
    guest::Mutex mutex;
};

// A condition variable: the waiter queues itself under the condition's spinlock before it lets the
// mutex go, so a notify_all() after the unlock always finds it (no lost wake-up).
class KernelCondition final : public txfs::Condition {
public:
    void wait(txfs::Mutex& mutex) override {
        // Every Mutex handed to the core by this platform is a KernelMutex.
        guest::Mutex& kernel_mutex = static_cast<KernelMutex&>(mutex).mutex;
        {
            IrqSpinLockGuard guard(lock_);
            kernel_mutex.unlock();
            waiters_.wait(lock_);
        }
        kernel_mutex.lock();
    }
    void notify_all() override {
        IrqSpinLockGuard guard(lock_);
        waiters_.wake_all();
    }

private:
    SpinLock lock_;  // guards waiters_
    WaitQueue waiters_;
};

class KernelWorker final : public txfs::Worker {
public:
    bool start(void (*entry)(void*), void* argument) {
        sched::ThreadOptions options;
        options.name = "txfs-repair";
        thread_ = sched::create_thread(entry, argument, options);
        return thread_ != nullptr;
    }
    ~KernelWorker() override { join(); }
    void join() override {
        if (thread_) sched::join(thread_);
        thread_ = nullptr;
    }

private:
    sched::Thread* thread_ = nullptr;  // null once joined
};

const char* level_name(txfs::LogLevel level) {
    switch (level) {
        case txfs::LogLevel::kInfo: return "info";
        case txfs::LogLevel::kWarning: return "warning";
        case txfs::LogLevel::kError: return "error";
    }
    return "?";
}

}  // namespace

void* KernelPlatform::allocate(size_t bytes) {
    void* memory = mm::allocate(bytes ? bytes : 1, bytes >= kSectorAlignedFrom ? kSectorAlignedFrom : 16);
    if (memory) __atomic_add_fetch(&live_allocations_, 1, __ATOMIC_RELAXED);
    return memory;
}

void KernelPlatform::release(void* memory, size_t /*bytes*/) {
    if (!memory) return;
    __atomic_sub_fetch(&live_allocations_, 1, __ATOMIC_RELAXED);
    mm::free(memory);
}

txfs::Mutex* KernelPlatform::create_mutex() { return new (std::nothrow) KernelMutex; }
txfs::Condition* KernelPlatform::create_condition() { return new (std::nothrow) KernelCondition; }

txfs::Worker* KernelPlatform::start_worker(void (*entry)(void*), void* argument) {
    // The worker object first: once the thread runs, nothing may fail any more.
    auto* worker = new (std::nothrow) KernelWorker;
    if (worker && !worker->start(entry, argument)) {
        delete worker;
        worker = nullptr;
    }
    return worker;
}

uint64_t KernelPlatform::monotonic_ns() { return time::now_ns(); }

void KernelPlatform::log(txfs::LogLevel level, const char* message) {
    const uint64_t now = time::now_ns();
    uint64_t dropped_before = 0;
    {
        IrqSpinLockGuard guard(log_lock_);
        if (now - window_start_ns_ >= log_window_ns_) {
            window_start_ns_ = now;
            lines_in_window_ = 0;
        }
        if (lines_in_window_ >= log_burst_) {
            ++lines_dropped_;
            ++dropped_since_print_;
            return;
        }
        ++lines_in_window_;
        ++lines_printed_;
        dropped_before = dropped_since_print_;
        dropped_since_print_ = 0;
    }
    if (dropped_before) kprint("txfs: (%lu log lines dropped by the rate limit)\n", dropped_before);
    kprint("txfs %s: %s\n", level_name(level), message);
}

KernelPlatformStats KernelPlatform::stats() const {
    IrqSpinLockGuard guard(log_lock_);
    return {__atomic_load_n(&live_allocations_, __ATOMIC_RELAXED), lines_printed_, lines_dropped_};
}

}  // namespace hvkvm::guest::fs
