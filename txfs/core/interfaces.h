// What the txfs core needs from its environment. The host implements these with a file and
// std:: facilities (txfs/host); the guest kernel implements them with its disk driver, heap,
// Mutex/Event and kernel threads. Nothing else in the core touches the outside world.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

namespace txfs {

enum class WriteMode : uint8_t {
    kNormal,  // durable only after a later flush()
    kFua,     // durable when write() returns (Force Unit Access); says nothing of earlier writes
};

// A disk addressed in bytes; offset and length are multiples of sector_size().
class BlockDevice {
public:
    virtual ~BlockDevice() = default;
    virtual uint32_t sector_size() const = 0;
    virtual uint64_t size_bytes() const = 0;
    virtual Status read(uint64_t offset, void* buffer, size_t length) = 0;
    virtual Status write(uint64_t offset, const void* data, size_t length, WriteMode mode) = 0;
    // Makes every write that completed before the call durable.
    virtual Status flush() = 0;
};

class Mutex {
public:
    virtual ~Mutex() = default;
    virtual void lock() = 0;
    virtual void unlock() = 0;
};

// A condition variable over a Mutex (the guest builds it from an Event or wait queue).
class Condition {
public:
    virtual ~Condition() = default;
    // Atomically unlocks `mutex`, sleeps until notified (or spuriously), relocks.
    virtual void wait(Mutex& mutex) = 0;
    virtual void notify_all() = 0;
};

// A thread running one function, joined by its owner.
class Worker {
public:
    virtual ~Worker() = default;
    virtual void join() = 0;
};

enum class LogLevel : uint8_t { kInfo, kWarning, kError };

class Platform {
public:
    virtual ~Platform() = default;
    // Memory for the core's own structures; nullptr when exhausted (the core returns kNoMemory).
    virtual void* allocate(size_t bytes) = 0;
    virtual void release(void* memory, size_t bytes) = 0;
    // Objects the caller owns and deletes (the platform allocates them with operator new).
    virtual Mutex* create_mutex() = 0;
    virtual Condition* create_condition() = 0;
    // Runs entry(argument) on its own thread; nullptr if no thread could be started.
    virtual Worker* start_worker(void (*entry)(void*), void* argument) = 0;
    virtual uint64_t monotonic_ns() = 0;
    // Repair and recovery messages (one line each, no trailing newline).
    virtual void log(LogLevel level, const char* message) = 0;
};

class MutexGuard {
public:
    explicit MutexGuard(Mutex& mutex) : mutex_(mutex) { mutex_.lock(); }
    ~MutexGuard() { mutex_.unlock(); }
    MutexGuard(const MutexGuard&) = delete;
    MutexGuard& operator=(const MutexGuard&) = delete;

private:
    Mutex& mutex_;
};

}  // namespace txfs
