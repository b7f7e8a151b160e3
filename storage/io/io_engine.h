// Disk I/O on one io_uring, for a single-threaded server (the root partition's event loop):
// operations are queued from host iovecs that point straight into guest RAM (no bounce copy),
// submitted together with one system call, and their completions reaped in batches when the
// ring's eventfd says some arrived.
//
// The ring is locked down when it is built (before the root partition sandboxes itself):
//   - the disks are registered files and every operation must name one (IOSQE_FIXED_FILE
//     required), so the ring cannot touch any other descriptor;
//   - only READV, WRITEV, FSYNC and FALLOCATE may be submitted (IORING_REGISTER_RESTRICTIONS),
//     so a compromised process cannot use it to open files or sockets behind seccomp's back;
//   - no io_uring_register call is allowed after that, and the sandbox refuses io_uring_setup and
//     io_uring_register altogether: io_uring_enter is the only io_uring system call it keeps.
//
// Not thread-safe: one thread queues, submits and reaps.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include <liburing.h>

#include "kvm/unique_fd.h"

namespace hvkvm::storage {

struct IoEngineCounters {
    uint64_t submitted = 0;     // operations handed to the kernel
    uint64_t submit_calls = 0;  // io_uring_enter calls that submitted
    uint64_t completed = 0;     // completions reaped (including injected ones)
    uint64_t reap_batches = 0;  // reap() calls that found something
};

class IoEngine {
public:
    // `files`: the disks, by index (fixed files 0..n-1). `depth`: submission queue entries; at
    // most 2 * depth operations are in flight (the completion queue's size), so none is dropped.
    // Throws vmm::HostError if io_uring is unavailable or refuses the restrictions.
    IoEngine(std::span<const int> files, uint32_t depth);
    ~IoEngine();
    IoEngine(const IoEngine&) = delete;
    IoEngine& operator=(const IoEngine&) = delete;

    // Readable when completions are waiting (an eventfd registered with the ring).
    int completion_fd() const { return completion_event_.get(); }

    // Room for `operations` more in flight (queued or submitted, not yet reaped).
    bool has_room(uint32_t operations = 1) const { return in_flight_ + operations <= capacity_; }
    uint32_t in_flight() const { return in_flight_; }
    uint32_t capacity() const { return capacity_; }

    // Queue one operation on disk `file`, completed with `tag`. The iovecs must stay valid until
    // submit() returns. Callers check has_room() first.
    void read(uint32_t file, const iovec* segments, uint32_t count, uint64_t offset, uint64_t tag);
    void write(uint32_t file, const iovec* segments, uint32_t count, uint64_t offset, bool fua, uint64_t tag);
    void flush(uint32_t file, uint64_t tag);  // fdatasync
    void punch_hole(uint32_t file, uint64_t offset, uint64_t length, uint64_t tag);
    // A completion without I/O (an injected fault): reaped like the others, with `result`
    // (-errno or a byte count).
    void complete_now(int32_t result, uint64_t tag);

    // Submits everything queued: one system call. Throws vmm::HostError if the ring fails.
    void submit();

    // Blocks until at least one completion can be reaped (none in flight: returns at once).
    void wait_for_completion();
    // Makes completion_fd() readable (a reaper that consumed it elsewhere wants the loop back).
    void wake();

    // Calls on_completion(tag, result) for every completion available, without blocking; returns
    // how many.
    template <typename OnCompletion>
    uint32_t reap(OnCompletion&& on_completion);

    const IoEngineCounters& counters() const { return counters_; }
    // The raw ring, for tests that probe its lockdown as a compromised process would.
    io_uring& ring_for_testing() { return ring_; }

private:
    io_uring_sqe* next_sqe();
    void drain_completion_event();

    io_uring ring_{};
    vmm::UniqueFd completion_event_;
    uint32_t capacity_ = 0;
    uint32_t in_flight_ = 0;
    struct Injected {
        int32_t result;
        uint64_t tag;
    };
    std::vector<Injected> injected_;
    IoEngineCounters counters_;
};

template <typename OnCompletion>
uint32_t IoEngine::reap(OnCompletion&& on_completion) {
    drain_completion_event();
    uint32_t reaped = 0;
    // Injected completions first: they were "done" before anything the kernel still runs.
    std::vector<Injected> injected;
    injected.swap(injected_);
    for (const Injected& completion : injected) {
        --in_flight_;
        ++reaped;
        on_completion(completion.tag, completion.result);
    }
    io_uring_cqe* cqe = nullptr;
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        --in_flight_;
        ++seen;
        on_completion(static_cast<uint64_t>(cqe->user_data), cqe->res);
    }
    io_uring_cq_advance(&ring_, seen);
    reaped += seen;
    counters_.completed += reaped;
    if (reaped != 0) ++counters_.reap_batches;
    return reaped;
}

}  // namespace hvkvm::storage
