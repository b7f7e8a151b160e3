// The block layer on a RAM-backed test device (drivers/ram_disk.h) whose completions the tests
// control: merging, splitting, refusals, device errors, completion in the submitting thread on
// its CPU, polling instead of interrupts, and many threads at once.
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "block/block.h"
#include "drivers/ram_disk.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "lib/random.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "tests/storage_test_support.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

using block::Io;
using block::IoStatus;
using block::Operation;
using test::HeapBuffer;

// A RAM disk for the length of a test.
class TestDisk {
public:
    explicit TestDisk(const ram_disk::Options& options) : disk_(ram_disk::create(options)) {}
    ~TestDisk() { ram_disk::destroy(disk_); }
    bool ok() const { return disk_ != nullptr; }
    ram_disk::RamDisk& disk() { return *disk_; }
    block::Device& device() { return ram_disk::device(*disk_); }

private:
    ram_disk::RamDisk* disk_;
};

ram_disk::Options held_options(uint32_t max_sectors) {
    ram_disk::Options options;
    options.name = "ram-test";
    options.completion = ram_disk::Completion::kHeld;
    options.limits.max_sectors = max_sectors;
    options.limits.max_segments = 256;
    options.limits.queue_depth = 1;
    return options;
}

Io make_io(Operation operation, uint64_t sector, uint32_t sectors, void* buffer) {
    Io io;
    io.operation = operation;
    io.sector = sector;
    io.sectors = sectors;
    io.buffer = buffer;
    return io;
}

// Releases held commands until every Io of `port` completed; false if the device holds nothing
// while Ios are still outstanding (they would never complete).
bool drain_held(block::CompletionPort& port, ram_disk::RamDisk& disk) {
    while (port.outstanding() > 0) {
        const uint32_t released = ram_disk::release_held(disk);
        uint32_t completed = 0;
        while (port.wait(time::now_ns())) ++completed;
        if (released == 0 && completed == 0) return false;
    }
    return true;
}

// Starts body(context) in a thread pinned to `cpu`; nullptr if it cannot be created.
sched::Thread* start_pinned(uint32_t cpu, void (*body)(void*), void* context, const char* name) {
    sched::ThreadOptions options;
    options.name = name;
    options.ideal_cpu = cpu;
    options.affinity = 1ull << cpu;
    return sched::create_thread(body, context, options);
}

}  // namespace

KTEST(storage, block_merges_adjacent_ios_up_to_the_max_transfer) {
    TestDisk disk(held_options(64));
    KASSERT(disk.ok());
    HeapBuffer buffer(128 * block::kSectorSize);
    test::fill_pattern(buffer.data(), 0, 128, 7);
    block::CompletionPort port;
    // The device is kept busy by a first Io while the rest queue up behind it.
    Io busy = make_io(Operation::kRead, 500, 8, buffer.data() + 100 * block::kSectorSize);
    block::submit(port, disk.device(), busy);
    Io ios[11];
    Io* batch[11];
    for (uint32_t i = 0; i < 9; ++i)  // 72 adjacent sectors: 64 (the max, exactly) in one command, 8 in the next
        ios[i] = make_io(Operation::kWrite, 8 * i, 8, buffer.data() + 8 * i * block::kSectorSize);
    ios[9] = make_io(Operation::kRead, 72, 8, buffer.data() + 72 * block::kSectorSize);    // another operation
    ios[10] = make_io(Operation::kWrite, 100, 8, buffer.data() + 80 * block::kSectorSize);  // not adjacent
    for (uint32_t i = 0; i < 11; ++i) batch[i] = &ios[i];
    block::submit(port, disk.device(), batch, 11);
    KASSERT(drain_held(port, disk.disk()));
    for (const Io& io : ios) KEXPECT(io.status == IoStatus::kOk);

    KASSERT(ram_disk::commands_started(disk.disk()) == 5);
    const struct {
        Operation operation;
        uint64_t sector;
        uint32_t sectors, pieces;
    } expected[] = {{Operation::kRead, 500, 8, 1}, {Operation::kWrite, 0, 64, 8}, {Operation::kWrite, 64, 8, 1},
                    {Operation::kRead, 72, 8, 1},  {Operation::kWrite, 100, 8, 1}};
    for (uint32_t i = 0; i < 5; ++i) {
        const ram_disk::LoggedCommand command = ram_disk::logged(disk.disk(), i);
        KEXPECT(command.operation == expected[i].operation);
        KEXPECT_EQ(command.sector, expected[i].sector);
        KEXPECT_EQ(command.sectors, expected[i].sectors);
        KEXPECT_EQ(command.pieces, expected[i].pieces);
    }
    KEXPECT_EQ(block::stats(disk.device()).merged_ios, 7u);
    for (uint64_t sector = 0; sector < 72; ++sector)
        KEXPECT(test::check_pattern(ram_disk::sector_data(disk.disk(), sector), sector, 1, 7));
}

KTEST(storage, block_merges_at_most_32_ios_per_command) {
    TestDisk disk(held_options(256));
    KASSERT(disk.ok());
    HeapBuffer buffer(64 * block::kSectorSize);
    block::CompletionPort port;
    Io busy = make_io(Operation::kRead, 1000, 1, buffer.data());
    block::submit(port, disk.device(), busy);
    static Io ios[33];
    static Io* batch[33];
    for (uint32_t i = 0; i < 33; ++i) {
        ios[i] = make_io(Operation::kWrite, i, 1, buffer.data() + (i + 1) * block::kSectorSize);
        batch[i] = &ios[i];
    }
    block::submit(port, disk.device(), batch, 33);
    KASSERT(drain_held(port, disk.disk()));
    KASSERT(ram_disk::commands_started(disk.disk()) == 3);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 1).pieces, block::kMaxIosPerCommand);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 2).pieces, 1u);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 2).sector, 32u);
}

KTEST(storage, block_splits_large_ios_to_the_device_limits) {
    ram_disk::Options options;
    options.name = "ram-split";
    options.limits.max_sectors = 16;
    options.limits.max_segments = 256;
    TestDisk disk(options);
    KASSERT(disk.ok());
    HeapBuffer out(40 * block::kSectorSize), in(40 * block::kSectorSize);
    test::fill_pattern(out.data(), 10, 40, 3);
    KEXPECT(block::write(disk.device(), 10, 40, out.data()) == IoStatus::kOk);
    KASSERT(ram_disk::commands_started(disk.disk()) == 3);
    for (uint32_t i = 0; i < 3; ++i) {
        KEXPECT_EQ(ram_disk::logged(disk.disk(), i).sector, 10u + 16 * i);
        KEXPECT_EQ(ram_disk::logged(disk.disk(), i).sectors, i < 2 ? 16u : 8u);
    }
    KEXPECT_EQ(block::stats(disk.device()).split_ios, 1u);
    KEXPECT(block::read(disk.device(), 10, 40, in.data()) == IoStatus::kOk);
    KEXPECT(test::check_pattern(in.data(), 10, 40, 3));
    KEXPECT(block::read(disk.device(), 0, 16, in.data()) == IoStatus::kOk);  // exactly the max: not split
    KEXPECT_EQ(block::stats(disk.device()).split_ios, 2u);  // (the 40-sector read was)
}

KTEST(storage, block_splits_where_segments_run_out_or_cross_a_boundary) {
    ram_disk::Options options;
    options.name = "ram-segments";
    options.limits.max_sectors = 64;
    options.limits.max_segments = 2;
    options.limits.max_segment_bytes = 4096;
    TestDisk disk(options);
    KASSERT(disk.ok());
    HeapBuffer buffer(8 * 4096);
    KEXPECT(block::read(disk.device(), 0, 16, buffer.data()) == IoStatus::kOk);  // 2 pages: 2 segments, exactly
    KEXPECT(block::read(disk.device(), 0, 24, buffer.data()) == IoStatus::kOk);  // 3 pages: one past
    KASSERT(ram_disk::commands_started(disk.disk()) == 3);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 0).segments, 2u);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 1).sectors, 16u);
    KEXPECT_EQ(ram_disk::logged(disk.disk(), 2).sectors, 8u);

    ram_disk::Options bounded = options;
    bounded.name = "ram-boundary";
    bounded.limits.max_segments = 4;
    bounded.limits.max_segment_bytes = 65536;
    bounded.limits.segment_boundary = 8192;
    TestDisk other(bounded);
    KASSERT(other.ok());
    HeapBuffer aligned(4 * 8192, 8192);  // physically contiguous (the heap's large blocks are)
    KEXPECT(block::read(other.device(), 0, 16, aligned.data()) == IoStatus::kOk);
    KEXPECT(block::read(other.device(), 0, 16, aligned.data() + 4096) == IoStatus::kOk);
    KEXPECT_EQ(ram_disk::logged(other.disk(), 0).segments, 1u);  // 8 KiB inside one 8 KiB block
    KEXPECT_EQ(ram_disk::logged(other.disk(), 1).segments, 2u);  // 8 KiB across a boundary
}

KTEST(storage, block_refuses_ios_outside_the_device_and_bad_buffers) {
    ram_disk::Options options;
    options.name = "ram-checks";
    options.sectors = 100;
    TestDisk disk(options);
    KASSERT(disk.ok());
    HeapBuffer buffer(8 * block::kSectorSize);
    KEXPECT(block::read(disk.device(), 96, 4, buffer.data()) == IoStatus::kOk);  // the last sectors
    KEXPECT(block::read(disk.device(), 97, 4, buffer.data()) == IoStatus::kOutOfRange);
    KEXPECT(block::read(disk.device(), ~0ull - 1, 4, buffer.data()) == IoStatus::kOutOfRange);
    KEXPECT(block::read(disk.device(), 0, 0, buffer.data()) == IoStatus::kInvalid);
    KEXPECT(block::read(disk.device(), 0, 1, buffer.data() + 2) == IoStatus::kInvalid);
    KEXPECT(block::read(disk.device(), 0, 1, reinterpret_cast<void*>(0x7fff00000000ull)) == IoStatus::kInvalid);
    KEXPECT(block::flush(disk.device()) == IoStatus::kOk);
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT_EQ(stats.refused, 5u);
    KEXPECT_EQ(stats.commands, 2u);
    KEXPECT_EQ(stats.flushes, 1u);

    ram_disk::Options read_only = options;
    read_only.name = "ram-read-only";
    read_only.read_only = true;
    TestDisk locked(read_only);
    KASSERT(locked.ok());
    KEXPECT(block::write(locked.device(), 0, 1, buffer.data()) == IoStatus::kReadOnly);
    KEXPECT(block::read(locked.device(), 0, 1, buffer.data()) == IoStatus::kOk);
}

KTEST(storage, block_device_errors_reach_every_io_of_the_command) {
    ram_disk::Options options = held_options(64);
    options.name = "ram-errors";
    options.failing_sector = 20;
    TestDisk disk(options);
    KASSERT(disk.ok());
    HeapBuffer buffer(64 * block::kSectorSize);
    block::CompletionPort port;
    Io busy = make_io(Operation::kRead, 40, 1, buffer.data());
    block::submit(port, disk.device(), busy);
    Io ios[3] = {make_io(Operation::kRead, 8, 8, buffer.data()), make_io(Operation::kRead, 16, 8, buffer.data() + 4096),
                 make_io(Operation::kRead, 30, 2, buffer.data() + 8192)};
    Io* batch[3] = {&ios[0], &ios[1], &ios[2]};
    block::submit(port, disk.device(), batch, 3);
    KASSERT(drain_held(port, disk.disk()));
    KEXPECT(busy.status == IoStatus::kOk);
    KEXPECT(ios[0].status == IoStatus::kDeviceError);  // merged with the failing one
    KEXPECT(ios[1].status == IoStatus::kDeviceError);
    KEXPECT_EQ(ios[1].device_error, ram_disk::kDeviceErrorDetail);
    KEXPECT(ios[2].status == IoStatus::kOk);
    KEXPECT_EQ(block::stats(disk.device()).errors, 1u);
}

namespace {

// Completion work records where it ran.
struct CompletionSite {
    sched::Thread* thread;
    uint32_t cpu;
};

void record_completion_site(Io& io) {
    auto& site = *static_cast<CompletionSite*>(io.context);
    site.thread = sched::current_thread();
    platform::InterruptsDisabled no_interrupts;
    site.cpu = this_cpu().index;
}

struct CompletionRun {
    ram_disk::RamDisk* disk;
    uint32_t submitter_cpu;
    sched::Thread* submitter;
    Io ios[4];
    CompletionSite sites[4];
    bool all_waited;
    uint32_t interrupt_cpu;
    uint32_t released;
};

void submit_and_wait(void* context) {
    auto& run = *static_cast<CompletionRun*>(context);
    run.submitter = sched::current_thread();
    static uint8_t buffer[4 * block::kSectorSize] __attribute__((aligned(4096)));
    block::CompletionPort port;
    Io* batch[4];
    for (uint32_t i = 0; i < 4; ++i) {
        run.ios[i] = make_io(Operation::kRead, 8 * i, 1, buffer + i * block::kSectorSize);
        run.ios[i].on_complete = record_completion_site;
        run.ios[i].context = &run.sites[i];
        batch[i] = &run.ios[i];
    }
    block::submit(port, ram_disk::device(*run.disk), batch, 4);
    uint32_t waited = 0;
    while (port.wait(time::now_ns() + 5'000'000'000ull)) ++waited;
    run.all_waited = waited == 4;
}

// The "device" interrupts the CPU this runs on once all four commands are in.
void release_when_four_held(void* context) {
    auto& run = *static_cast<CompletionRun*>(context);
    const uint64_t deadline = time::now_ns() + 5'000'000'000ull;
    while (ram_disk::held(*run.disk) < 4 && time::now_ns() < deadline) sched::sleep_ns(100'000);
    platform::InterruptsDisabled no_interrupts;
    run.interrupt_cpu = this_cpu().index;
    run.released = ram_disk::release_held(*run.disk);
}

}  // namespace

KTEST(storage, block_completion_runs_in_the_waiting_thread_on_the_submitting_cpu) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs");
    ram_disk::Options options = held_options(64);
    options.name = "ram-completion";
    options.limits.queue_depth = 4;
    TestDisk disk(options);
    KASSERT(disk.ok());
    static CompletionRun run;
    run = {};
    run.disk = &disk.disk();
    run.submitter_cpu = test::last_online_cpu();
    sched::Thread* submitter = start_pinned(run.submitter_cpu, submit_and_wait, &run, "io-submitter");
    KASSERT(submitter != nullptr);
    sched::Thread* device = start_pinned(test::nth_online_cpu(0), release_when_four_held, &run, "io-device");
    KASSERT(device != nullptr);
    sched::join(device);
    sched::join(submitter);
    KEXPECT_EQ(run.released, 4u);
    KEXPECT(run.all_waited);
    KEXPECT(run.interrupt_cpu != run.submitter_cpu);
    for (uint32_t i = 0; i < 4; ++i) {
        KEXPECT(run.ios[i].status == IoStatus::kOk);
        KEXPECT_EQ(run.ios[i].submit_cpu, run.submitter_cpu);
        KEXPECT_EQ(run.ios[i].completion_cpu, run.submitter_cpu);
        KEXPECT_EQ(run.sites[i].cpu, run.submitter_cpu);
        KEXPECT(run.sites[i].thread == run.submitter);
    }
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT_EQ(stats.interrupts, 1u);  // one interrupt completed all four
    KEXPECT_EQ(stats.interrupt_completions, 4u);
    KEXPECT_EQ(stats.polled_completions, 0u);
}

namespace {

struct PollRun {
    ram_disk::RamDisk* disk;
    uint32_t queue;
    bool all_waited;
    bool interrupts_were_off;
    uint32_t released;
};

void submit_and_poll(void* context) {
    auto& run = *static_cast<PollRun*>(context);
    static uint8_t buffer[8 * block::kSectorSize] __attribute__((aligned(4096)));
    block::CompletionPort port;
    Io ios[8];
    Io* batch[8];
    for (uint32_t i = 0; i < 8; ++i) {
        ios[i] = make_io(Operation::kWrite, 16 * i, 1, buffer + i * block::kSectorSize);
        batch[i] = &ios[i];
    }
    block::submit(port, ram_disk::device(*run.disk), batch, 8);
    uint32_t waited = 0;
    while (port.wait(time::now_ns() + 5'000'000'000ull)) ++waited;
    run.all_waited = waited == 8;
}

// The device completes everything once the waiter polls, i.e. has turned interrupts off.
void release_while_polled(void* context) {
    auto& run = *static_cast<PollRun*>(context);
    const uint64_t deadline = time::now_ns() + 5'000'000'000ull;
    while ((ram_disk::held(*run.disk) < 8 || ram_disk::interrupts_enabled(*run.disk, run.queue)) &&
           time::now_ns() < deadline)
        x86::pause();
    run.interrupts_were_off = !ram_disk::interrupts_enabled(*run.disk, run.queue);
    run.released = ram_disk::release_held(*run.disk);
}

}  // namespace

KTEST(storage, block_waiter_polls_a_busy_queue_with_its_interrupts_off) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs");
    ram_disk::Options options = held_options(64);
    options.name = "ram-poll";
    options.limits.queue_depth = 8;
    options.limits.poll_ns = 2'000'000'000;  // longer than the other thread takes to release the commands
    TestDisk disk(options);
    KASSERT(disk.ok());
    static PollRun run;
    const uint32_t poller_cpu = test::last_online_cpu();
    run = {&disk.disk(), poller_cpu % options.limits.hardware_queues, false, false, 0};
    sched::Thread* poller = start_pinned(poller_cpu, submit_and_poll, &run, "io-poller");
    KASSERT(poller != nullptr);
    sched::Thread* device = start_pinned(test::nth_online_cpu(0), release_while_polled, &run, "io-device");
    KASSERT(device != nullptr);
    sched::join(device);
    sched::join(poller);
    KEXPECT(run.interrupts_were_off);
    KEXPECT_EQ(run.released, 8u);
    KEXPECT(run.all_waited);
    KEXPECT(ram_disk::interrupts_enabled(disk.disk(), run.queue));  // back on once nobody polls
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT_EQ(stats.polled_completions, 8u);
    KEXPECT_EQ(stats.interrupts, 0u);
    KEXPECT_EQ(stats.interrupt_completions, 0u);
}

namespace {

struct GiveWayRun {
    ram_disk::RamDisk* disk;
    uint32_t queue;
    bool completed;
    bool interrupts_on_when_released;
    uint32_t released;
};

void submit_one_and_wait(void* context) {
    auto& run = *static_cast<GiveWayRun*>(context);
    static uint8_t buffer[block::kSectorSize] __attribute__((aligned(4096)));
    block::CompletionPort port;
    Io io = make_io(Operation::kWrite, 0, 1, buffer);
    Io* batch[1] = {&io};
    block::submit(port, ram_disk::device(*run.disk), batch, 1);
    run.completed = port.wait(time::now_ns() + 5'000'000'000ull) != nullptr;
}

// Runs on the poller's CPU: each wake-up from a nap makes it ready there while the poller polls.
void release_when_held(void* context) {
    auto& run = *static_cast<GiveWayRun*>(context);
    const uint64_t deadline = time::now_ns() + 5'000'000'000ull;
    while (ram_disk::held(*run.disk) < 1 && time::now_ns() < deadline) sched::sleep_ns(1'000'000);
    run.interrupts_on_when_released = ram_disk::interrupts_enabled(*run.disk, run.queue);
    run.released = ram_disk::release_held(*run.disk);
}

}  // namespace

KTEST(storage, block_waiter_stops_polling_for_a_thread_ready_on_its_cpu) {
    ram_disk::Options options = held_options(64);
    options.name = "ram-give-way";
    options.limits.poll_ns = 2'000'000'000;  // far past a time slice: only giving way ends it early
    TestDisk disk(options);
    KASSERT(disk.ok());
    static GiveWayRun run;
    const uint32_t cpu = test::last_online_cpu();
    run = {&disk.disk(), cpu % options.limits.hardware_queues, false, false, 0};
    sched::Thread* poller = start_pinned(cpu, submit_one_and_wait, &run, "io-poller");
    KASSERT(poller != nullptr);
    sched::Thread* releaser = start_pinned(cpu, release_when_held, &run, "io-releaser");
    KASSERT(releaser != nullptr);
    sched::join(releaser);
    sched::join(poller);
    KEXPECT(run.completed);
    KEXPECT_EQ(run.released, 1u);
    // The releaser ran while the poller slept with the queue's interrupts on, not when a time
    // slice ended in the middle of the poll (interrupts off, the completion then polled).
    KEXPECT(run.interrupts_on_when_released);
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT(stats.polls_given_way >= 1);
    KEXPECT_EQ(stats.interrupt_completions, 1u);
    KEXPECT_EQ(stats.polled_completions, 0u);
}

KTEST(storage, block_without_polling_each_completion_is_an_interrupt) {
    ram_disk::Options options;
    options.name = "ram-timed";
    options.completion = ram_disk::Completion::kTimed;
    options.latency_ns = 50'000;
    options.limits.queue_depth = 1;
    TestDisk disk(options);
    KASSERT(disk.ok());
    HeapBuffer buffer(4 * block::kSectorSize);
    for (uint32_t i = 0; i < 4; ++i) KEXPECT(block::read(disk.device(), 8 * i, 1, buffer.data()) == IoStatus::kOk);
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT_EQ(stats.interrupts, 4u);
    KEXPECT_EQ(stats.interrupt_completions, 4u);
    KEXPECT_EQ(stats.polled_completions, 0u);
}

namespace {

struct StressRun {
    block::Device* device;
    uint32_t failures;
};

// Each thread owns a slice of the disk and keeps 4 Ios in flight. A write puts the pattern of its
// sectors there (the same bytes whichever write it is), so every sector read back is either
// still zero or that pattern, however the Ios overlap.
void random_io(void* context, uint32_t index) {
    auto& run = *static_cast<StressRun*>(context);
    constexpr uint32_t kSlice = 256, kDepth = 4, kRounds = 200;
    HeapBuffer buffers(kDepth * 8 * block::kSectorSize);
    Random random(77 + index);
    block::CompletionPort port;
    Io ios[kDepth];
    const uint64_t base = uint64_t{index} * kSlice;
    const auto submit_next = [&](Io& io, uint32_t slot, uint32_t round) {
        const uint32_t sectors = 1 + static_cast<uint32_t>(random.below(8));
        const uint64_t sector = base + random.below(kSlice - sectors);
        uint8_t* data = buffers.data() + slot * 8 * block::kSectorSize;
        io = make_io(round % 2 ? Operation::kRead : Operation::kWrite, sector, sectors, data);
        if (io.operation == Operation::kWrite) test::fill_pattern(data, sector, sectors, index);
        io.context = reinterpret_cast<void*>(uint64_t{slot});
        block::submit(port, *run.device, io);
    };
    for (uint32_t slot = 0; slot < kDepth; ++slot) submit_next(ios[slot], slot, slot);
    for (uint32_t round = kDepth; round < kRounds + kDepth; ++round) {
        Io* done = port.wait(time::now_ns() + 5'000'000'000ull);
        if (!done || done->status != IoStatus::kOk) {
            __atomic_fetch_add(&run.failures, 1, __ATOMIC_RELAXED);
            if (!done) return;
        }
        if (done->operation == Operation::kRead &&
            !test::check_pattern_or_zero(static_cast<uint8_t*>(done->buffer), done->sector, done->sectors, index))
            __atomic_fetch_add(&run.failures, 1, __ATOMIC_RELAXED);
        const auto slot = static_cast<uint32_t>(reinterpret_cast<uint64_t>(done->context));
        if (round < kRounds) submit_next(ios[slot], slot, round);
    }
    while (port.wait(time::now_ns() + 5'000'000'000ull)) {
    }
}

}  // namespace

KTEST(storage, block_many_threads_through_per_cpu_queues) {
    const uint32_t threads = smp::online_count() < 4 ? 4 : smp::online_count();
    ram_disk::Options options;
    options.name = "ram-stress";
    options.sectors = threads * 256;
    options.completion = ram_disk::Completion::kTimed;
    options.latency_ns = 20'000;
    options.limits.queue_depth = 8;
    options.limits.hardware_queues = 2;
    options.limits.poll_ns = 30'000;
    TestDisk disk(options);
    KASSERT(disk.ok());
    StressRun run{&disk.device(), 0};
    KASSERT(test::run_in_threads(threads, test::Placement::kOnePerCpu, random_io, &run));
    KEXPECT_EQ(run.failures, 0u);
    const block::DeviceStats stats = block::stats(disk.device());
    KEXPECT_EQ(stats.ios, uint64_t{threads} * 200);
    KEXPECT_EQ(stats.interrupt_completions + stats.polled_completions, stats.commands);
    KEXPECT_EQ(stats.commands + stats.merged_ios, stats.ios);
}

}  // namespace hvkvm::guest
