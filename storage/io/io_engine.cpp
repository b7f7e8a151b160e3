#include "storage/io/io_engine.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "kvm/kvm_error.h"

namespace hvkvm::storage {
namespace {

constexpr uint8_t kAllowedOperations[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE};

void check(int result, const char* what) {
    if (result < 0) throw vmm::HostError(-result, fmt::format("io_uring: {}", what));
}

}  // namespace

IoEngine::IoEngine(std::span<const int> files, uint32_t depth)
    : completion_event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!completion_event_.valid()) vmm::throw_errno("eventfd for io_uring completions");
    io_uring_params params{};
    // Disabled until locked down: restrictions can only be registered on a ring not yet enabled.
    params.flags = IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
    params.cq_entries = 2 * depth;
    check(io_uring_queue_init_params(depth, &ring_, &params), "setup (is io_uring disabled on this host?)");
    capacity_ = params.cq_entries;
    try {
        if (!files.empty()) check(io_uring_register_files(&ring_, files.data(), static_cast<unsigned>(files.size())), "register the disks");
        check(io_uring_register_eventfd(&ring_, completion_event_.get()), "register the completion eventfd");
        io_uring_restriction restrictions[std::size(kAllowedOperations) + 1] = {};
        unsigned count = 0;
        for (uint8_t operation : kAllowedOperations) {
            restrictions[count].opcode = IORING_RESTRICTION_SQE_OP;
            restrictions[count].sqe_op = operation;
            ++count;
        }
        restrictions[count].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
        restrictions[count].sqe_flags = IOSQE_FIXED_FILE;
        ++count;
        // Debian's liburing 2.3 declares io_uring_register_restrictions() and
        // io_uring_enable_rings() but does not export them: use the raw registration call.
        check(io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_RESTRICTIONS, restrictions, count),
              "register restrictions");
        check(io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_ENABLE_RINGS, nullptr, 0),
              "enable the ring");
    } catch (...) {
        io_uring_queue_exit(&ring_);
        throw;
    }
}

IoEngine::~IoEngine() { io_uring_queue_exit(&ring_); }

io_uring_sqe* IoEngine::next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // the submission queue is full: hand it to the kernel and go on
        submit();
        sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) throw vmm::HostError(EBUSY, "io_uring: no submission entry after submitting");
    }
    ++in_flight_;
    return sqe;
}

void IoEngine::read(uint32_t file, const iovec* segments, uint32_t count, uint64_t offset, uint64_t tag) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_readv(sqe, static_cast<int>(file), segments, count, offset);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, tag);
}

void IoEngine::write(uint32_t file, const iovec* segments, uint32_t count, uint64_t offset, bool fua, uint64_t tag) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_writev(sqe, static_cast<int>(file), segments, count, offset);
    if (fua) sqe->rw_flags = RWF_DSYNC;  // durable (data and the metadata to find it) before completion
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, tag);
}

void IoEngine::flush(uint32_t file, uint64_t tag) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_fsync(sqe, static_cast<int>(file), IORING_FSYNC_DATASYNC);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, tag);
}

void IoEngine::punch_hole(uint32_t file, uint64_t offset, uint64_t length, uint64_t tag) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_fallocate(sqe, static_cast<int>(file), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            static_cast<off_t>(offset), static_cast<off_t>(length));
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, tag);
}

void IoEngine::complete_now(int32_t result, uint64_t tag) {
    ++in_flight_;
    injected_.push_back(Injected{result, tag});
    wake();  // as a kernel completion would
}

void IoEngine::wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(completion_event_.get(), &one, sizeof one);
}

void IoEngine::wait_for_completion() {
    if (in_flight_ == 0 || !injected_.empty()) return;
    submit();  // what is only queued would never complete
    io_uring_cqe* cqe = nullptr;
    int result;
    do result = io_uring_wait_cqe(&ring_, &cqe);
    while (result == -EINTR);
    check(result, "wait for a completion");
}

void IoEngine::submit() {
    // An entry the kernel refuses (it completes with the error) ends a submit call early: go on
    // until the queue is empty.
    while (io_uring_sq_ready(&ring_) != 0) {
        const int submitted = io_uring_submit(&ring_);
        if (submitted == -EINTR) continue;
        check(submitted, "submit");  // anything else: the ring is broken, a host error
        counters_.submitted += static_cast<uint64_t>(submitted);
        ++counters_.submit_calls;
        if (submitted == 0) break;
    }
}

void IoEngine::drain_completion_event() {
    uint64_t count;
    [[maybe_unused]] ssize_t got = ::read(completion_event_.get(), &count, sizeof count);
}

}  // namespace hvkvm::storage
