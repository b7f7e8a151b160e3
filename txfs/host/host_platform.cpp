#include "host/host_platform.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace txfs::host {
namespace {

class HostMutex final : public Mutex {
public:
    void lock() override { mutex.lock(); }
    void unlock() override { mutex.unlock(); }
    std::mutex mutex;
};

class HostCondition final : public Condition {
public:
    void wait(Mutex& mutex) override {
        // Every Mutex handed to the core by this platform is a HostMutex.
        std::unique_lock<std::mutex> lock(static_cast<HostMutex&>(mutex).mutex, std::adopt_lock);
        condition_.wait(lock);
        lock.release();
    }
    void notify_all() override { condition_.notify_all(); }

private:
    std::condition_variable condition_;
};

class HostWorker final : public Worker {
public:
    HostWorker(void (*entry)(void*), void* argument) : thread_(entry, argument) {}
    ~HostWorker() override {
        if (thread_.joinable()) thread_.join();
    }
    void join() override {
        if (thread_.joinable()) thread_.join();
    }

private:
    std::thread thread_;
};

}  // namespace

void* HostPlatform::allocate(size_t bytes) {
    void* memory = std::malloc(bytes ? bytes : 1);
    if (memory) outstanding_ += static_cast<int64_t>(bytes);
    return memory;
}

void HostPlatform::release(void* memory, size_t bytes) {
    if (!memory) return;
    outstanding_ -= static_cast<int64_t>(bytes);
    std::free(memory);
}

Mutex* HostPlatform::create_mutex() { return new HostMutex; }
Condition* HostPlatform::create_condition() { return new HostCondition; }

Worker* HostPlatform::start_worker(void (*entry)(void*), void* argument) { return new HostWorker(entry, argument); }

uint64_t HostPlatform::monotonic_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void HostPlatform::log(LogLevel level, const char* message) {
    static constexpr const char* kLevels[] = {"info", "warning", "error"};
    if (echo_) std::fprintf(stderr, "txfs %s: %s\n", kLevels[static_cast<int>(level)], message);
    std::lock_guard guard(lock_);
    messages_.emplace_back(message);
}

std::vector<std::string> HostPlatform::messages() const {
    std::lock_guard guard(lock_);
    return messages_;
}

bool HostPlatform::logged(const std::string& fragment) const {
    std::lock_guard guard(lock_);
    for (const std::string& message : messages_)
        if (message.find(fragment) != std::string::npos) return true;
    return false;
}

void HostPlatform::clear_messages() {
    std::lock_guard guard(lock_);
    messages_.clear();
}

int64_t HostPlatform::outstanding_bytes() const { return outstanding_.load(); }

}  // namespace txfs::host
