// The io_uring engine on a real file (O_DIRECT where the file system allows it), its lockdown, the
// deterministic fault injector, and the root partition's sandbox with a ring built before it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "sandbox.h"
#include "storage/io/fault_injector.h"
#include "storage/io/io_engine.h"
#include "storage_test_support.h"

using namespace hvkvm::storage;
using hvkvm::storage::testing::ScratchImage;

namespace {

struct AlignedBuffer {
    explicit AlignedBuffer(size_t bytes) : size(bytes) {
        REQUIRE(::posix_memalign(&data, 4096, bytes) == 0);
        std::memset(data, 0, bytes);
    }
    ~AlignedBuffer() { std::free(data); }
    uint8_t* bytes() { return static_cast<uint8_t*>(data); }
    void* data = nullptr;
    size_t size;
};

// Runs the engine until `count` completions arrived; returns them by tag.
std::map<uint64_t, int32_t> complete(IoEngine& engine, uint32_t count) {
    std::map<uint64_t, int32_t> results;
    engine.submit();
    while (results.size() < count) {
        engine.wait_for_completion();
        engine.reap([&](uint64_t tag, int32_t result) { results[tag] = result; });
    }
    return results;
}

}  // namespace

TEST_CASE("io engine: O_DIRECT writes, reads back, flushes and punches holes through the ring", "[storage][io]") {
    SKIP_WITHOUT_IO_URING();
    ScratchImage image(1 << 20);
    const int fd = image.open(true);
    IoEngine engine(std::span<const int>(&fd, 1), 8);
    CHECK(engine.capacity() == 16);

    AlignedBuffer out(8192), in(8192);
    for (size_t i = 0; i < out.size; ++i) out.bytes()[i] = static_cast<uint8_t>(i * 7 + 3);
    iovec write_segments[2] = {{out.bytes(), 4096}, {out.bytes() + 4096, 4096}};
    engine.write(0, write_segments, 2, 65536, true, 1);
    engine.flush(0, 2);
    auto results = complete(engine, 2);
    CHECK(results[1] == 8192);
    CHECK(results[2] == 0);
    CHECK(image.read(65536, 8192) == std::vector<uint8_t>(out.bytes(), out.bytes() + 8192));

    iovec read_segment{in.bytes(), 8192};
    engine.read(0, &read_segment, 1, 65536, 3);
    CHECK(complete(engine, 1)[3] == 8192);
    CHECK(std::memcmp(in.bytes(), out.bytes(), 8192) == 0);

    engine.punch_hole(0, 65536, 4096, 4);
    CHECK(complete(engine, 1)[4] == 0);
    CHECK(image.read(65536, 4096) == std::vector<uint8_t>(4096, 0));
    CHECK(image.read(69632, 4096) == std::vector<uint8_t>(out.bytes() + 4096, out.bytes() + 8192));
    CHECK(image.size() == (1 << 20));  // KEEP_SIZE

    const IoEngineCounters& counters = engine.counters();
    CHECK(counters.completed == 4);
    CHECK(counters.submitted == 4);
    CHECK(engine.in_flight() == 0);
}

TEST_CASE("io engine: room is the completion queue's size; injected completions wake the reaper", "[storage][io]") {
    SKIP_WITHOUT_IO_URING();
    ScratchImage image(1 << 16);
    const int fd = image.open(false);
    IoEngine engine(std::span<const int>(&fd, 1), 4);
    REQUIRE(engine.capacity() == 8);
    for (uint64_t i = 0; i < 7; ++i) engine.complete_now(-EIO, i);
    CHECK(engine.has_room(1));
    CHECK_FALSE(engine.has_room(2));
    engine.complete_now(-ENOSPC, 7);
    CHECK_FALSE(engine.has_room(1));
    uint64_t event = 0;
    CHECK(::read(engine.completion_fd(), &event, sizeof event) == sizeof event);  // readable
    std::map<uint64_t, int32_t> results;
    CHECK(engine.reap([&](uint64_t tag, int32_t result) { results[tag] = result; }) == 8);
    CHECK(results[0] == -EIO);
    CHECK(results[7] == -ENOSPC);
    CHECK(engine.has_room(8));
}

TEST_CASE("io engine: the ring only takes its own operations on its registered disks", "[storage][io][hostile]") {
    SKIP_WITHOUT_IO_URING();
    ScratchImage image(1 << 16);
    const int fd = image.open(false);
    IoEngine engine(std::span<const int>(&fd, 1), 4);
    // A compromised root partition would submit straight to the ring: openat, and a read on a
    // descriptor that is not a registered disk.
    io_uring& ring = engine.ring_for_testing();
    io_uring_sqe* open_file = io_uring_get_sqe(&ring);
    io_uring_prep_openat(open_file, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
    open_file->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(open_file, 1);
    // A refused entry ends its submit call (without IORING_SETUP_SUBMIT_ALL): one call each.
    REQUIRE(io_uring_submit(&ring) == 1);
    char byte;
    io_uring_sqe* raw_read = io_uring_get_sqe(&ring);
    io_uring_prep_read(raw_read, fd, &byte, 1, 0);  // not IOSQE_FIXED_FILE
    io_uring_sqe_set_data64(raw_read, 2);
    REQUIRE(io_uring_submit(&ring) == 1);
    io_uring_sqe* unregistered = io_uring_get_sqe(&ring);
    io_uring_prep_read(unregistered, 1, &byte, 1, 0);  // fixed file 1 does not exist
    unregistered->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(unregistered, 3);
    REQUIRE(io_uring_submit(&ring) == 1);
    std::map<uint64_t, int32_t> results;
    for (int i = 0; i < 3; ++i) {
        io_uring_cqe* cqe = nullptr;
        REQUIRE(io_uring_wait_cqe(&ring, &cqe) == 0);
        results[cqe->user_data] = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
    }
    CHECK(results[1] == -EACCES);
    CHECK(results[2] == -EACCES);
    CHECK(results[3] < 0);
    // And no registration may change that.
    CHECK(io_uring_register_files(&ring, &fd, 1) == -EACCES);
}

TEST_CASE("fault injector: the nth operation of a kind and count - 1 after it", "[storage][io]") {
    DiskFault fault;
    fault.operation = FaultOperation::kWrite;
    fault.effect = FaultEffect::kEnospc;
    fault.nth = 3;
    fault.count = 2;
    FaultInjector injector(fault);
    FaultEffect effect{};
    std::vector<bool> failed;
    for (int i = 0; i < 6; ++i) {
        CHECK_FALSE(injector.next(FaultOperation::kRead, effect));  // reads are counted apart
        failed.push_back(injector.next(FaultOperation::kWrite, effect));
    }
    CHECK(failed == std::vector<bool>{false, false, true, true, false, false});
    CHECK(effect == FaultEffect::kEnospc);
    CHECK(injector.injected() == 2);
    FaultInjector disarmed;
    CHECK_FALSE(disarmed.next(FaultOperation::kRead, effect));
}

TEST_CASE("sandbox: a ring built before still serves; a new ring or registration is refused", "[storage][sandbox]") {
    SKIP_WITHOUT_IO_URING();
    ScratchImage image(1 << 16);
    image.write(4096, std::vector<uint8_t>(4096, 0x5a));
    const pid_t pid = ::fork();
    if (pid == 0) {
        int code = 0;
        try {
            const int fd = image.open(false);
            IoEngine engine(std::span<const int>(&fd, 1), 4);
            hvkvm::root::enter_sandbox();
            std::vector<uint8_t> data(4096);
            iovec segment{data.data(), data.size()};
            engine.read(0, &segment, 1, 4096, 9);
            engine.submit();
            engine.wait_for_completion();
            int32_t result = -1;
            engine.reap([&](uint64_t, int32_t value) { result = value; });
            if (result != 4096 || data[0] != 0x5a) code |= 1;
            io_uring_params params{};
            if (::syscall(SYS_io_uring_setup, 4, &params) >= 0 || errno != EPERM) code |= 2;
            if (::syscall(SYS_io_uring_register, engine.ring_for_testing().ring_fd, IORING_UNREGISTER_FILES, nullptr, 0) >= 0 ||
                errno != EPERM)
                code |= 4;
            if (::open(image.path().c_str(), O_RDONLY) >= 0 || errno != EPERM) code |= 8;
        } catch (...) {
            code = 100;
        }
        ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
