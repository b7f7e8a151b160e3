#include "console/console_output.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>

#include "console/console_buffer.h"
#include "kvm/kvm_error.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {
namespace {

// Interrupts the writer's write() when finish() gives up on draining.
constexpr int kInterruptSignal = SIGUSR2;
constexpr size_t kLargestWrite = 64 * 1024;
constexpr auto kInterruptInterval = std::chrono::milliseconds(10);

void install_interrupt_handler() {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: the blocked write() must return
    if (::sigaction(kInterruptSignal, &action, nullptr) < 0) throw_errno("sigaction for the console interrupt signal");
}

// Starts `body` on a thread that receives no signal but kInterruptSignal: not the stop signals
// (the main thread reads those), and not SIGPIPE (a vanished reader is an EPIPE to handle).
std::thread start_writer_thread(std::function<void()> body) {
    sigset_t all, previous;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    std::thread thread([body = std::move(body)] {
        sigset_t interrupt;
        sigemptyset(&interrupt);
        sigaddset(&interrupt, kInterruptSignal);
        ::pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);
        body();
    });
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    ::pthread_setname_np(thread.native_handle(), "console");
    return thread;
}

}  // namespace

class ConsoleOutput::Writer {
public:
    Writer(UniqueFd owned, int fd) : owned_(std::move(owned)), fd_(fd) {
        install_interrupt_handler();
        thread_ = start_writer_thread([this] { run(); });
    }
    ~Writer() { finish(kDrainLimit); }

    void write(std::span<const uint8_t> bytes) {
        bool first_drop = false;
        {
            std::lock_guard lock(mutex_);
            if (state_.closing || state_.failed) {
                state_.dropped += bytes.size();
                return;
            }
            if (!state_.backlog.append(bytes)) {
                state_.dropped += bytes.size();
                first_drop = !std::exchange(state_.warned, true);
            }
        }
        wake_.notify_one();
        if (first_drop)
            spdlog::warn("guest console output is not being read: dropping it beyond a {} KiB backlog",
                         kBacklogLimit / 1024);
    }

    void finish(std::chrono::milliseconds drain_limit) {
        if (!thread_.joinable()) return;
        std::unique_lock lock(mutex_);
        state_.closing = true;
        wake_.notify_one();
        if (!finished_.wait_for(lock, drain_limit, [&] { return state_.done; })) {
            state_.abandoned = true;
            do {
                ::pthread_kill(thread_.native_handle(), kInterruptSignal);
            } while (!finished_.wait_for(lock, kInterruptInterval, [&] { return state_.done; }));
        }
        state_.dropped += state_.backlog.size();
        state_.backlog.clear();
        const uint64_t dropped = state_.dropped;
        lock.unlock();
        thread_.join();
        if (dropped) spdlog::info("guest console: {} bytes were not written", dropped);
    }

    uint64_t dropped() const {
        std::lock_guard lock(mutex_);
        return state_.dropped;
    }

private:
    // The writer thread: moves the backlog to the fd until finish() says stop and it is empty.
    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return !state_.backlog.empty() || state_.closing; });
            if (state_.abandoned || (state_.closing && state_.backlog.empty())) break;
            const std::span<const uint8_t> chunk = state_.backlog.oldest();  // unchanged until consumed
            lock.unlock();
            const ssize_t written = ::write(fd_, chunk.data(), std::min(chunk.size(), kLargestWrite));
            const int error = errno;
            if (written < 0 && error == EAGAIN) wait_until_writable();
            lock.lock();
            if (written > 0) state_.backlog.consume(static_cast<size_t>(written));
            else if (!(written < 0 && (error == EINTR || error == EAGAIN))) fail(lock, error);
        }
        state_.done = true;
        finished_.notify_all();
    }

    // The console is gone for good (EPIPE, a full disk, ...): drop everything from now on.
    void fail(std::unique_lock<std::mutex>& lock, int error) {
        state_.failed = true;
        state_.dropped += state_.backlog.size();
        state_.backlog.clear();
        lock.unlock();
        spdlog::warn("console output failed ({}); further guest console output is dropped",
                     error ? std::strerror(error) : "nothing written");
        lock.lock();
    }

    // A non-blocking descriptor (its flags belong to whoever opened it) that is full.
    void wait_until_writable() const {
        pollfd writable{fd_, POLLOUT, 0};
        ::poll(&writable, 1, 100);
    }

    UniqueFd owned_;  // empty for stdout, which the VMM does not own
    const int fd_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;      // for the writer: output to write, or closing
    std::condition_variable finished_;  // for finish(): the writer has stopped
    struct State {                      // guarded by mutex_
        ConsoleBuffer backlog{kBacklogLimit};
        uint64_t dropped = 0;
        bool warned = false;            // the "not being read" warning was given
        bool closing = false;           // finish() was called
        bool abandoned = false;         // finish() stopped waiting for the drain
        bool failed = false;            // the console returned an error
        bool done = false;              // the writer thread has stopped
    } state_;
    std::thread thread_;
};

ConsoleOutput::ConsoleOutput(std::unique_ptr<Writer> writer) : writer_(std::move(writer)) {}
ConsoleOutput::ConsoleOutput(ConsoleOutput&& other) noexcept = default;
ConsoleOutput::~ConsoleOutput() = default;

ConsoleOutput ConsoleOutput::to_stdout() { return ConsoleOutput(std::make_unique<Writer>(UniqueFd(), STDOUT_FILENO)); }

ConsoleOutput ConsoleOutput::to_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) throw_errno(fmt::format("cannot open console file {}", path.string()));
    const int raw = fd.get();
    return ConsoleOutput(std::make_unique<Writer>(std::move(fd), raw));
}

void ConsoleOutput::write(std::span<const uint8_t> bytes) { writer_->write(bytes); }
void ConsoleOutput::finish(std::chrono::milliseconds drain_limit) { writer_->finish(drain_limit); }
uint64_t ConsoleOutput::dropped_bytes() const { return writer_->dropped(); }

}  // namespace hvkvm::vmm
