// The root partition's sandbox, entered in a child process: afterwards it may use descriptors it
// holds, but opening files (/dev/kvm above all), creating sockets and executing are refused.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "event_loop.h"
#include "sandbox.h"

using namespace hvkvm::root;

namespace {

// Runs `body` in a forked child that has entered the sandbox; returns the child's exit status
// (the body's result), or -signal if it died of a signal.
template <typename Body>
int in_sandboxed_child(Body body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        try {
            enter_sandbox();
        } catch (...) {
            ::_exit(100);
        }
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

TEST_CASE("inside the sandbox: no new privileges, no capabilities, a seccomp filter", "[root-sandbox]") {
    CHECK(in_sandboxed_child([] {
              const SandboxState state = sandbox_state();
              return state.seccomp_mode == 2 && state.capabilities == 0 && state.no_new_privileges ? 0 : 1;
          }) == 0);
}

TEST_CASE("inside the sandbox: opening /dev/kvm, or any file, is refused with EPERM", "[root-sandbox]") {
    CHECK(in_sandboxed_child([] { return ::open("/dev/kvm", O_RDWR) < 0 && errno == EPERM ? 0 : 1; }) == 0);
    CHECK(in_sandboxed_child([] { return ::open("/dev/null", O_RDONLY) < 0 && errno == EPERM ? 0 : 1; }) == 0);
    CHECK(in_sandboxed_child([] { return ::socket(AF_UNIX, SOCK_STREAM, 0) < 0 && errno == EPERM ? 0 : 1; }) == 0);
    CHECK(in_sandboxed_child([] {
              char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
              ::execv("/bin/true", argv);
              return errno == EPERM ? 0 : 1;
          }) == 0);
}

TEST_CASE("inside the sandbox: descriptors it holds still work", "[root-sandbox]") {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    CHECK(in_sandboxed_child([&] {
              const char byte = 'x';
              char back = 0;
              return ::write(pipe_fds[1], &byte, 1) == 1 && ::read(pipe_fds[0], &back, 1) == 1 && back == 'x' ? 0 : 1;
          }) == 0);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}

TEST_CASE("inside the sandbox: the event loop's timers fire; a new timerfd is refused", "[root-sandbox]") {
    EventLoop loop;  // created before the sandbox, as the root partition's is
    CHECK(in_sandboxed_child([&] {
              int fired = 0;
              EventLoop::Timer later(loop, [&] { ++fired; });
              EventLoop::Timer first(loop, [&] {
                  ++fired;
                  later.arm_at(EventLoop::Clock::now() + std::chrono::milliseconds(5));
              });
              EventLoop::Timer stop(loop, [&] { loop.stop(); });
              first.arm_at(EventLoop::Clock::now() + std::chrono::milliseconds(1));
              stop.arm_at(EventLoop::Clock::now() + std::chrono::milliseconds(50));
              loop.run();
              const bool refused = ::timerfd_create(CLOCK_MONOTONIC, 0) < 0 && errno == EPERM;
              return fired == 2 && refused ? 0 : 1;
          }) == 0);
}
