#include "vmm_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hvkvm::hostile {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// A pipe whose ends close themselves.
struct Pipe {
    int read_end = -1, write_end = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) fail("pipe2");
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    void close_read() {
        if (read_end >= 0) ::close(read_end);
        read_end = -1;
    }
    void close_write() {
        if (write_end >= 0) ::close(write_end);
        write_end = -1;
    }
};

// In the child: stdout and stderr onto the pipes, default signal state, then exec.
[[noreturn]] void exec_child(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd) {
    ::dup2(stdout_fd, STDOUT_FILENO);
    ::dup2(stderr_fd, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);  // as a shell would start it: a vmm that ignores nothing by itself
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
}

// Whether `child` has blocked `signal` yet (/proc/PID/status, SigBlk). Before the VMM's first act
// in main() any stop signal kills it with the default action, as it would any program: a signal
// "at N ms" is sent no earlier than this, so that a loaded host cannot turn a test of the VMM's
// set-up into a test of the dynamic loader.
bool has_blocked(pid_t child, int signal) {
    const int fd = ::open(("/proc/" + std::to_string(child) + "/status").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true;  // gone: let the caller find out
    char text[4096];
    const ssize_t size = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (size <= 0) return true;
    text[size] = '\0';
    const char* line = std::strstr(text, "\nSigBlk:");
    if (!line) return true;
    const unsigned long long mask = std::strtoull(line + std::strlen("\nSigBlk:"), nullptr, 16);
    return mask & (1ull << (signal - 1));
}

class Watch {
public:
    Watch(pid_t child, const SignalPlan& plan, const RunLimits& limits)
        : child_(child), plan_(plan), limits_(limits), start_(Clock::now()) {
        if (plan_.signal && plan_.marker.empty()) signal_due_ = start_ + plan_.after_start;
    }

    // Called with each chunk of output, to spot the marker.
    void saw_output(const std::string& recent) {
        if (plan_.signal && !plan_.marker.empty() && !signal_due_ && recent.find(plan_.marker) != std::string::npos)
            signal_due_ = Clock::now() + plan_.after_marker;
    }

    // Sends the signal or kills the child when due; returns how long poll() may sleep.
    int poll_timeout_ms(RunResult& result) {
        const auto now = Clock::now();
        if (signal_due_ && !signal_sent_ && now >= *signal_due_ && has_blocked(child_, plan_.signal)) {
            ::kill(child_, plan_.signal);
            signal_sent_ = now;
            result.signal_sent_at = elapsed(now);
        }
        const auto deadline = signal_sent_ ? std::min(*signal_sent_ + limits_.after_signal, start_ + limits_.overall)
                                           : start_ + limits_.overall;
        if (now >= deadline && !result.killed_for_timeout) {
            ::kill(child_, SIGKILL);
            result.killed_for_timeout = true;
        }
        auto next = deadline;
        if (signal_due_ && !signal_sent_) next = std::min(next, *signal_due_);
        const auto wait = std::chrono::duration_cast<milliseconds>(next - now).count();
        return static_cast<int>(std::clamp<long long>(wait, 1, 100));
    }

    void exited(RunResult& result) {
        const auto now = Clock::now();
        result.duration = elapsed(now);
        if (signal_sent_) result.exit_after_signal = std::chrono::duration_cast<milliseconds>(now - *signal_sent_);
    }

private:
    milliseconds elapsed(Clock::time_point when) const { return std::chrono::duration_cast<milliseconds>(when - start_); }

    pid_t child_;
    const SignalPlan& plan_;
    const RunLimits& limits_;
    Clock::time_point start_;
    std::optional<Clock::time_point> signal_due_;
    std::optional<Clock::time_point> signal_sent_;
};

// Reads what is available; false at end of file.
bool drain(int fd, CapturedStream& stream, size_t keep, Watch& watch) {
    char buffer[65536];
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) return errno == EINTR || errno == EAGAIN;
    if (got == 0) return false;
    stream.total_bytes += static_cast<size_t>(got);
    const size_t room = keep > stream.text.size() ? keep - stream.text.size() : 0;
    stream.text.append(buffer, std::min(room, static_cast<size_t>(got)));
    // The new bytes with a little of what came before, so that a marker split across reads is found.
    stream.tail.append(buffer, static_cast<size_t>(got));
    watch.saw_output(stream.tail);
    constexpr size_t kContext = 256;
    if (stream.tail.size() > kContext) stream.tail.erase(0, stream.tail.size() - kContext);
    return true;
}

// Returns once the child has exec'd (its copy of `exec_done` is close-on-exec), so that signal
// times count from the VMM's start, not from the fork.
void wait_for_exec(Pipe& exec_done) {
    exec_done.close_write();
    char byte;
    while (::read(exec_done.read_end, &byte, 1) < 0 && errno == EINTR) {
    }
}

}  // namespace

RunResult run_vmm(const std::vector<std::string>& argv, StdoutMode stdout_mode, const SignalPlan& signal,
                  const RunLimits& limits) {
    Pipe out, err, exec_done;
    const pid_t child = ::fork();
    if (child < 0) fail("fork");
    if (child == 0) exec_child(argv, out.write_end, err.write_end);
    out.close_write();
    err.close_write();
    wait_for_exec(exec_done);
    if (stdout_mode == StdoutMode::kClosed) out.close_read();  // the reader is gone: writes get EPIPE

    RunResult result;
    Watch watch(child, signal, limits);
    bool out_open = stdout_mode == StdoutMode::kRead, err_open = true;
    for (;;) {
        pollfd fds[2] = {{err_open ? err.read_end : -1, POLLIN, 0}, {out_open ? out.read_end : -1, POLLIN, 0}};
        const int ready = ::poll(fds, 2, watch.poll_timeout_ms(result));
        if (ready < 0 && errno != EINTR) fail("poll");
        if (fds[0].revents) err_open = drain(err.read_end, result.err, limits.kept_output_bytes, watch);
        if (fds[1].revents) out_open = drain(out.read_end, result.out, limits.kept_output_bytes, watch);
        rusage usage{};
        const pid_t done = ::wait4(child, &result.wait_status, WNOHANG, &usage);
        if (done == child) {
            watch.exited(result);
            result.peak_rss_kib = usage.ru_maxrss;
            while (err_open) err_open = drain(err.read_end, result.err, limits.kept_output_bytes, watch);
            while (out_open) out_open = drain(out.read_end, result.out, limits.kept_output_bytes, watch);
            return result;
        }
    }
}

}  // namespace hvkvm::hostile
