#include "drivers/ram_disk.h"

#include <new>

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/time.h"
#include "kernel/sched/timer.h"
#include "kernel/sync/spinlock.h"
#include "lib/bits.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::ram_disk {

class RamDisk;

namespace {

// The disk is kept in pieces of the heap's largest block.
constexpr uint64_t kPieceBytes = 4ull << 20;

// One hardware queue's "device side".
struct QueueState {
    RamDisk* disk = nullptr;
    uint32_t index = 0;
    SpinLock lock;     // guards done, held and interrupts
    uint64_t done = 0;  // tags the hardware finished, not yet reaped
    uint64_t held = 0;  // kHeld: tags waiting for release_held()
    bool interrupts = true;
    block::Command* started[block::kMaxQueueDepth] = {};
    block::IoStatus status[block::kMaxQueueDepth] = {};
    sched::Timer timers[block::kMaxQueueDepth];
};

void on_latency_expired(sched::Timer& timer);

}  // namespace

class RamDisk final : public block::Driver {
public:
    explicit RamDisk(const Options& options) : options_(options) {}

    bool init() {
        const uint64_t bytes = options_.sectors * block::kSectorSize;
        pieces_count_ = (bytes + kPieceBytes - 1) / kPieceBytes;
        pieces_ = static_cast<uint8_t**>(mm::allocate(sizeof(uint8_t*) * pieces_count_));
        if (!pieces_) return false;
        memset(pieces_, 0, sizeof(uint8_t*) * pieces_count_);
        for (uint64_t i = 0; i < pieces_count_; ++i) {
            const uint64_t piece = bytes - i * kPieceBytes < kPieceBytes ? bytes - i * kPieceBytes : kPieceBytes;
            pieces_[i] = static_cast<uint8_t*>(mm::allocate(piece, abi::kPageSize));
            if (!pieces_[i]) return false;
            memset(pieces_[i], 0, piece);
        }
        void* queues = mm::allocate(sizeof(QueueState) * options_.limits.hardware_queues, alignof(QueueState));
        if (!queues) return false;
        queues_ = static_cast<QueueState*>(queues);
        for (uint32_t i = 0; i < options_.limits.hardware_queues; ++i) {
            QueueState& queue = *new (&queues_[i]) QueueState;
            queue.disk = this;
            queue.index = i;
            for (sched::Timer& timer : queue.timers) {
                timer.callback = on_latency_expired;
                timer.context = &queue;
            }
        }
        device_ = block::register_device(options_.name, options_.sectors, options_.read_only, options_.limits, *this);
        return device_ != nullptr;
    }

    ~RamDisk() override {
        if (device_) block::unregister_device(*device_);
        if (queues_)
            for (uint32_t i = 0; i < options_.limits.hardware_queues; ++i) queues_[i].~QueueState();
        mm::free(queues_);
        for (uint64_t i = 0; pieces_ && i < pieces_count_; ++i) mm::free(pieces_[i]);
        mm::free(pieces_);
    }

    void start(block::Command& command) override {
        record(command);
        const block::IoStatus status = move_data(command);
        QueueState& queue = queues_[command.queue];
        if (options_.completion == Completion::kInline)
            return block::complete(command, status, status == block::IoStatus::kOk ? 0 : kDeviceErrorDetail);
        {
            IrqSpinLockGuard guard(queue.lock);
            queue.started[command.tag] = &command;
            queue.status[command.tag] = status;
            if (options_.completion == Completion::kHeld) queue.held |= 1ull << command.tag;
        }
        // Not under the lock: arming waits for the tag's previous callback if it still runs on
        // another CPU, and that callback may be reaping, which takes the lock.
        if (options_.completion == Completion::kTimed)
            sched::arm_timer(queue.timers[command.tag], time::now_ns() + options_.latency_ns);
    }

    uint32_t reap(uint32_t queue_index) override {
        QueueState& queue = queues_[queue_index];
        uint64_t done;
        {
            IrqSpinLockGuard guard(queue.lock);
            done = queue.done;
            queue.done = 0;
        }
        uint32_t count = 0;
        for (; done; done &= done - 1, ++count) {
            const auto tag = static_cast<uint32_t>(__builtin_ctzll(done));
            const block::IoStatus status = queue.status[tag];
            block::complete(*queue.started[tag], status, status == block::IoStatus::kOk ? 0 : kDeviceErrorDetail);
        }
        return count;
    }

    void set_completion_interrupts(uint32_t queue_index, bool enabled) override {
        QueueState& queue = queues_[queue_index];
        IrqSpinLockGuard guard(queue.lock);
        queue.interrupts = enabled;
    }

    // The hardware finished `tag` (timer or release): interrupt unless the driver turned them off.
    void finish(QueueState& queue, uint64_t tags) {
        bool interrupt;
        {
            IrqSpinLockGuard guard(queue.lock);
            queue.done |= tags;
            interrupt = queue.interrupts;
        }
        if (interrupt) block::interrupt(*device_, queue.index);
    }

    uint32_t release_held() {
        uint32_t released = 0;
        for (uint32_t i = 0; i < options_.limits.hardware_queues; ++i) {
            QueueState& queue = queues_[i];
            uint64_t held;
            {
                IrqSpinLockGuard guard(queue.lock);
                held = queue.held;
                queue.held = 0;
            }
            if (!held) continue;
            released += popcount64(held);
            platform::InterruptsDisabled in_interrupt_context;
            finish(queue, held);
        }
        return released;
    }

    uint32_t held() {
        uint32_t count = 0;
        for (uint32_t i = 0; i < options_.limits.hardware_queues; ++i) {
            IrqSpinLockGuard guard(queues_[i].lock);
            count += popcount64(queues_[i].held);
        }
        return count;
    }

    bool interrupts_enabled(uint32_t queue_index) {
        IrqSpinLockGuard guard(queues_[queue_index].lock);
        return queues_[queue_index].interrupts;
    }

    block::Device& device() { return *device_; }
    uint8_t* sector_data(uint64_t sector) {
        const uint64_t offset = sector * block::kSectorSize;
        return pieces_[offset / kPieceBytes] + offset % kPieceBytes;
    }
    uint64_t commands_started() {
        IrqSpinLockGuard guard(log_lock_);
        return started_;
    }
    LoggedCommand logged(uint64_t index) {
        IrqSpinLockGuard guard(log_lock_);
        return log_[index % kLogSize];
    }

private:
    void record(const block::Command& command) {
        IrqSpinLockGuard guard(log_lock_);
        log_[started_++ % kLogSize] = LoggedCommand{command.operation, command.sector,     command.sectors,
                                                    command.segment_count, command.piece_count, this_cpu().index};
    }

    // The "hardware" copies between its RAM and the command's segments (identity-mapped RAM).
    block::IoStatus move_data(const block::Command& command) {
        if (command.operation == block::Operation::kFlush) return block::IoStatus::kOk;
        if (options_.failing_sector >= command.sector && options_.failing_sector < command.sector + command.sectors)
            return block::IoStatus::kDeviceError;
        uint64_t sector = command.sector;
        for (uint32_t i = 0; i < command.segment_count; ++i) {
            auto* memory = reinterpret_cast<uint8_t*>(command.segments[i].physical);
            for (uint32_t done = 0; done < command.segments[i].bytes; done += block::kSectorSize, ++sector) {
                if (command.operation == block::Operation::kRead) memcpy(memory + done, sector_data(sector), block::kSectorSize);
                else memcpy(sector_data(sector), memory + done, block::kSectorSize);
            }
        }
        return block::IoStatus::kOk;
    }

    Options options_;
    uint8_t** pieces_ = nullptr;  // of kPieceBytes (the last one may be shorter)
    uint64_t pieces_count_ = 0;
    QueueState* queues_ = nullptr;
    block::Device* device_ = nullptr;
    SpinLock log_lock_;  // guards the log
    LoggedCommand log_[kLogSize] = {};
    uint64_t started_ = 0;
};

namespace {

void on_latency_expired(sched::Timer& timer) {
    auto& queue = *static_cast<QueueState*>(timer.context);
    const auto tag = static_cast<uint32_t>(&timer - queue.timers);
    queue.disk->finish(queue, 1ull << tag);
}

}  // namespace

RamDisk* create(const Options& options) {
    void* memory = mm::allocate(sizeof(RamDisk), alignof(RamDisk));
    if (!memory) return nullptr;
    RamDisk* disk = new (memory) RamDisk(options);
    if (!disk->init()) {
        destroy(disk);
        return nullptr;
    }
    return disk;
}

void destroy(RamDisk* disk) {
    if (!disk) return;
    disk->~RamDisk();
    mm::free(disk);
}

block::Device& device(RamDisk& disk) { return disk.device(); }
uint8_t* sector_data(RamDisk& disk, uint64_t sector) { return disk.sector_data(sector); }
uint32_t release_held(RamDisk& disk) { return disk.release_held(); }
uint32_t held(RamDisk& disk) { return disk.held(); }
bool interrupts_enabled(RamDisk& disk, uint32_t queue) { return disk.interrupts_enabled(queue); }
uint64_t commands_started(RamDisk& disk) { return disk.commands_started(); }
LoggedCommand logged(RamDisk& disk, uint64_t index) { return disk.logged(index); }

}  // namespace hvkvm::guest::ram_disk
