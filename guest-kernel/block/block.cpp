// The block layer: per-CPU software queues feeding per-device hardware queues, merging, splitting,
// completion through ports, polling. See block.h (users) and driver.h (drivers).
//
// Locks: a hardware queue's lock guards its tags, its dispatch and the bookkeeping of the Ios it
// has taken (every part of an Io goes to the hardware queue of the CPU that submitted it); a
// software queue's lock guards its list. Order: hardware queue, then software queue; a port's
// lock is taken with neither held. All with interrupts disabled (completions run in interrupt
// handlers).
#include "block/driver.h"

#include <new>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "hvkvm/abi/boot.h"
#include "kernel/panic.h"
#include "kernel/sched/scheduler.h"
#include "kernel/sync/cross_call.h"
#include "lib/bits.h"
#include "mm/heap.h"
#include "mm/paging.h"

namespace hvkvm::guest::block {

const char* describe(IoStatus status) {
    switch (status) {
    case IoStatus::kPending: return "pending";
    case IoStatus::kOk: return "ok";
    case IoStatus::kOutOfRange: return "out of range";
    case IoStatus::kReadOnly: return "read-only device";
    case IoStatus::kInvalid: return "invalid request";
    case IoStatus::kDeviceError: return "device error";
    }
    return "?";
}

namespace {

constexpr uint32_t kNoCpu = ~0u;

enum class CompletionSource : uint8_t { kInline, kInterrupt, kPoll };

struct SoftwareQueue {
    SpinLock lock;
    IntrusiveList<Io, &Io::queue_link> ios;  // not yet wholly dispatched, in submission order
};

struct HardwareQueue {
    SpinLock lock;             // guards the fields up to `pollers`
    Command* commands = nullptr;  // queue_depth of them, indexed by tag
    uint64_t busy_tags = 0;    // bit t: commands[t] is with the driver
    uint32_t next_turn = 0;    // round robin over the software queues mapped here
    bool dispatching = false;  // a CPU is in the dispatch loop (it picks up what others queue)
    uint32_t pollers = 0;      // waiters polling: completion interrupts are off while > 0
    // One reaper at a time (atomics): a caller that finds one busy asks it to go round again.
    bool reaping = false;
    bool reap_again = false;
    uint32_t reaper_cpu = kNoCpu;
    CompletionSource reap_source = CompletionSource::kInline;
};

}  // namespace

struct Device {
    const char* name = nullptr;
    uint64_t sectors = 0;
    bool read_only = false;
    Limits limits;
    Driver* driver = nullptr;
    HardwareQueue* queues = nullptr;  // limits.hardware_queues of them
    SoftwareQueue software[abi::kMaxVcpus];
    DeviceStats stats{};  // atomically updated counters
};

// Submission and posting reach into CompletionPort.
struct PortAccess {
    static void note_submission(CompletionPort& port, Device& device, uint32_t queue, uint32_t count) {
        __atomic_store_n(&port.outstanding_, port.outstanding_ + count, __ATOMIC_RELAXED);
        port.poll_device_ = &device;
        port.poll_queue_ = queue;
    }
    static void post(CompletionPort& port, Io& io) {
        IrqSpinLockGuard guard(port.lock_);
        io.posted_ns = time::now_ns();
        port.done_.push_back(io);
        port.waiter_.wake_one();
    }
    static bool has_done(CompletionPort& port) { return port.has_done(); }
};

namespace {

struct Registry {
    SpinLock lock;
    Device* devices[kMaxDevices] = {};
    uint32_t count = 0;
} registry;

void add(uint64_t& counter, uint64_t value = 1) { __atomic_fetch_add(&counter, value, __ATOMIC_RELAXED); }

bool limits_usable(const Limits& limits) {
    const uint64_t boundary = limits.segment_boundary;
    return limits.max_sectors >= 1 && limits.max_segments >= 1 && limits.max_segment_bytes >= abi::kPageSize &&
           limits.max_segment_bytes % kSectorSize == 0 &&
           (boundary == 0 || (boundary >= abi::kPageSize && (boundary & (boundary - 1)) == 0)) &&
           limits.queue_depth >= 1 && limits.queue_depth <= kMaxQueueDepth && limits.hardware_queues >= 1 &&
           limits.hardware_queues <= abi::kMaxVcpus;
}

bool prepare_queue(Device& device, HardwareQueue& queue, uint32_t index) {
    const Limits& limits = device.limits;
    void* commands = mm::allocate(sizeof(Command) * limits.queue_depth, alignof(Command));
    void* segments = mm::allocate(sizeof(Segment) * limits.max_segments * limits.queue_depth, alignof(Segment));
    if (!commands || !segments) {
        mm::free(commands);
        mm::free(segments);
        return false;
    }
    queue.commands = static_cast<Command*>(commands);
    for (uint32_t tag = 0; tag < limits.queue_depth; ++tag) {
        Command& command = queue.commands[tag];
        command = Command{};
        command.device = &device;
        command.queue = index;
        command.tag = tag;
        command.segment_storage = static_cast<Segment*>(segments) + size_t{tag} * limits.max_segments;
        command.segments = command.segment_storage;
    }
    return true;
}

// --- submission ---------------------------------------------------------------------------------

// Migratable regions (mm/migration.h) can move a page while the device transfers into it.
bool buffer_usable(const Io& io) {
    const auto start = reinterpret_cast<uint64_t>(io.buffer);
    const uint64_t bytes = uint64_t{io.sectors} * kSectorSize;
    if (start % kSectorSize != 0 || start + bytes < start) return false;
    if (start < mm::kMappedRegionEnd && start + bytes > mm::kMappedRegionStart) return false;
    for (uint64_t page = start & ~(abi::kPageSize - 1); page < start + bytes; page += abi::kPageSize)
        if (mm::translate(page) == 0) return false;
    return true;
}

// kPending if the Io may go to the device, else why not.
IoStatus check(const Device& device, const Io& io) {
    if (io.operation == Operation::kFlush) return io.sectors == 0 ? IoStatus::kPending : IoStatus::kInvalid;
    if (io.sectors == 0) return IoStatus::kInvalid;
    if (io.sector > device.sectors || io.sectors > device.sectors - io.sector) return IoStatus::kOutOfRange;
    if (io.operation == Operation::kWrite && device.read_only) return IoStatus::kReadOnly;
    if (io.fua && (io.operation != Operation::kWrite || !device.limits.fua)) return IoStatus::kInvalid;
    if (!buffer_usable(io)) return IoStatus::kInvalid;
    return IoStatus::kPending;
}

// --- dispatch -----------------------------------------------------------------------------------

bool extend_last_segment(const Limits& limits, Command& command, uint64_t physical, uint64_t bytes) {
    if (command.segment_count == 0) return false;
    Segment& last = command.segment_storage[command.segment_count - 1];
    if (last.physical + last.bytes != physical || last.bytes + bytes > limits.max_segment_bytes) return false;
    const uint64_t boundary = limits.segment_boundary;
    if (boundary && last.physical / boundary != (physical + bytes - 1) / boundary) return false;
    last.bytes += static_cast<uint32_t>(bytes);
    return true;
}

// Page lists: a new segment must start a page, and the one before it end one (only Ios' buffers
// that start or end inside a page meet this; an Io's own pages always continue its list).
bool continues_page_list(const Command& command, uint64_t physical) {
    if (command.segment_count == 0) return true;
    const Segment& last = command.segment_storage[command.segment_count - 1];
    return physical % abi::kPageSize == 0 && (last.physical + last.bytes) % abi::kPageSize == 0;
}

// Appends the physical segments of up to `wanted` sectors of `io`, from where its dispatch stands;
// returns the sectors that fit in the command's segments. Buffers are 512-byte aligned, so every
// piece of a page is whole sectors.
uint32_t add_segments(const Limits& limits, Command& command, const Io& io, uint32_t wanted) {
    uint64_t address = reinterpret_cast<uint64_t>(io.buffer) + uint64_t{io.dispatched_sectors} * kSectorSize;
    uint64_t left = uint64_t{wanted} * kSectorSize;
    uint64_t added = 0;
    while (left > 0) {
        const uint64_t bytes = left < abi::kPageSize - address % abi::kPageSize ? left : abi::kPageSize - address % abi::kPageSize;
        const uint64_t physical = mm::translate(address);
        if (!extend_last_segment(limits, command, physical, bytes)) {
            if (command.segment_count == limits.max_segments) break;
            if (limits.page_list && !continues_page_list(command, physical)) break;
            command.segment_storage[command.segment_count++] = Segment{physical, static_cast<uint32_t>(bytes)};
        }
        address += bytes;
        left -= bytes;
        added += bytes;
    }
    return static_cast<uint32_t>(added / kSectorSize);
}

void add_piece(Command& command, Io& io, uint32_t sectors) {
    command.pieces[command.piece_count++] = Command::Piece{&io, sectors};
    command.sectors += sectors;
    io.dispatched_sectors += sectors;
    ++io.commands_in_flight;
}

// The next Io carries on where the command ends: same operation, the following sector, and not
// already partly dispatched.
bool continues(const Command& command, const Io& io) {
    return io.operation == command.operation && io.fua == command.fua && io.dispatched_sectors == 0 &&
           io.sector == command.sector + command.sectors;
}

// Fills `command` from the head of `software`: the head Io (or what is left of it), then the Ios
// after it while they continue it and fit. Ios wholly in the command leave the queue; one cut by
// the limits stays at the head for the next command.
void build_command(Device& device, SoftwareQueue& software, Command& command) {
    Io& first = *software.ios.front();
    command.operation = first.operation;
    command.fua = first.fua;
    command.sector = first.sector + first.dispatched_sectors;
    command.sectors = 0;
    command.segment_count = 0;
    command.piece_count = 0;
    if (first.operation == Operation::kFlush) {
        add_piece(command, first, 0);
        software.ios.pop_front();
        return;
    }
    while (Io* io = software.ios.front()) {
        if (command.piece_count == kMaxIosPerCommand) break;
        if (command.piece_count > 0 && !continues(command, *io)) break;
        const uint32_t room = device.limits.max_sectors - command.sectors;
        const uint32_t left = io->sectors - io->dispatched_sectors;
        const uint32_t added = add_segments(device.limits, command, *io, left < room ? left : room);
        if (added == 0) break;  // no segment left (the first piece always gets one)
        if (command.piece_count > 0) add(device.stats.merged_ios);
        const bool first_part = io->dispatched_sectors == 0;
        add_piece(command, *io, added);
        if (io->dispatched_sectors < io->sectors) {
            if (first_part) add(device.stats.split_ios);
            break;
        }
        software.ios.pop_front();
    }
}

// A command for a free tag from the software queues mapped to this hardware queue, taken in turn;
// nullptr if the queue is full or they are empty. The hardware queue's lock is held.
Command* next_command(Device& device, HardwareQueue& queue, uint32_t queue_index) {
    const Limits& limits = device.limits;
    if (popcount64(queue.busy_tags) >= limits.queue_depth) return nullptr;
    const auto tag = static_cast<uint32_t>(__builtin_ctzll(~queue.busy_tags));
    const uint32_t cpus = smp::configured_cpu_count();
    if (queue_index >= cpus) return nullptr;  // no CPU submits here
    const uint32_t mapped = (cpus - queue_index + limits.hardware_queues - 1) / limits.hardware_queues;
    for (uint32_t i = 0; i < mapped; ++i) {
        const uint32_t turn = (queue.next_turn + i) % mapped;
        SoftwareQueue& software = device.software[queue_index + turn * limits.hardware_queues];
        if (software.ios.empty()) continue;  // a peek; checked again under the lock
        SpinLockGuard guard(software.lock);
        if (software.ios.empty()) continue;
        Command& command = queue.commands[tag];
        build_command(device, software, command);
        queue.busy_tags |= 1ull << tag;
        queue.next_turn = (turn + 1) % mapped;
        return &command;
    }
    return nullptr;
}

// Starts commands while the hardware queue has free tags and Ios wait. One CPU runs the loop at a
// time; another that finds it running leaves its work to it (the loop looks again after each
// start). start() runs without the lock, as a synchronous device completes inside it.
void run_queue(Device& device, uint32_t queue_index) {
    HardwareQueue& queue = device.queues[queue_index];
    platform::InterruptsDisabled no_interrupts;
    queue.lock.lock();
    if (!queue.dispatching) {
        queue.dispatching = true;
        while (Command* command = next_command(device, queue, queue_index)) {
            add(device.stats.commands);
            queue.lock.unlock();
            device.driver->start(*command);
            queue.lock.lock();
        }
        queue.dispatching = false;
    }
    queue.lock.unlock();
}

// --- completion ---------------------------------------------------------------------------------

CompletionSource source_of(const HardwareQueue& queue) {
    if (__atomic_load_n(&queue.reaper_cpu, __ATOMIC_RELAXED) == this_cpu().index) return queue.reap_source;
    return CompletionSource::kInline;
}

void count_completion(Device& device, const Command& command, CompletionSource source, IoStatus status) {
    DeviceStats& stats = device.stats;
    add(source == CompletionSource::kInterrupt ? stats.interrupt_completions
        : source == CompletionSource::kPoll     ? stats.polled_completions
                                                : stats.inline_completions);
    if (status != IoStatus::kOk) add(stats.errors);
    if (command.operation == Operation::kRead) add(stats.sectors_read, command.sectors);
    else if (command.operation == Operation::kWrite) add(stats.sectors_written, command.sectors);
    else add(stats.flushes);
}

// One reaper per queue: interrupts are off, so reaper_cpu names this CPU until it is done. The
// flags pair as store-then-load on both sides (sequentially consistent), so a request to go round
// again is never lost between the reaper's last pass and its release.
void reap(Device& device, uint32_t queue_index, CompletionSource source) {
    HardwareQueue& queue = device.queues[queue_index];
    platform::InterruptsDisabled no_interrupts;
    __atomic_store_n(&queue.reap_again, true, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&queue.reap_again, __ATOMIC_SEQ_CST) &&
           !__atomic_exchange_n(&queue.reaping, true, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&queue.reap_again, false, __ATOMIC_SEQ_CST);
        queue.reap_source = source;
        __atomic_store_n(&queue.reaper_cpu, this_cpu().index, __ATOMIC_RELAXED);
        device.driver->reap(queue_index);
        __atomic_store_n(&queue.reaper_cpu, kNoCpu, __ATOMIC_RELAXED);
        __atomic_store_n(&queue.reaping, false, __ATOMIC_SEQ_CST);
    }
}

void set_polling(Device& device, uint32_t queue_index, bool polling) {
    HardwareQueue& queue = device.queues[queue_index];
    IrqSpinLockGuard guard(queue.lock);
    const bool changes = polling ? queue.pollers++ == 0 : --queue.pollers == 0;
    if (changes) device.driver->set_completion_interrupts(queue_index, !polling);
}

// Polls until `port` has a completed Io or `until` passes, with the queue's interrupts off; then
// reaps once more after turning them back on, for whatever completed unannounced meanwhile.
void poll(CompletionPort& port, Device& device, uint32_t queue_index, uint64_t until) {
    set_polling(device, queue_index, true);
    do {
        reap(device, queue_index, CompletionSource::kPoll);
        if (PortAccess::has_done(port)) break;
        // Another thread could use this CPU: sleep and take the interrupt instead (Linux's
        // need_resched check in its polling loops).
        if (sched::threads_waiting_here()) {
            add(device.stats.polls_given_way);
            break;
        }
        x86::pause();
    } while (time::now_ns() < until);
    set_polling(device, queue_index, false);
    reap(device, queue_index, CompletionSource::kPoll);
}

}  // namespace

// --- the interfaces -------------------------------------------------------------------------------

Device* register_device(const char* name, uint64_t sectors, bool read_only, const Limits& limits, Driver& driver) {
    if (!limits_usable(limits)) return nullptr;
    void* memory = mm::allocate(sizeof(Device), alignof(Device));
    void* queues = mm::allocate(sizeof(HardwareQueue) * limits.hardware_queues, alignof(HardwareQueue));
    if (!memory || !queues) {
        mm::free(memory);
        mm::free(queues);
        return nullptr;
    }
    Device* device = new (memory) Device;
    device->name = name;
    device->sectors = sectors;
    device->read_only = read_only;
    device->limits = limits;
    device->driver = &driver;
    device->queues = static_cast<HardwareQueue*>(queues);
    for (uint32_t i = 0; i < limits.hardware_queues; ++i) {
        new (&device->queues[i]) HardwareQueue;
        if (!prepare_queue(*device, device->queues[i], i)) return nullptr;  // boot time: the memory stays lost
    }
    IrqSpinLockGuard guard(registry.lock);
    if (registry.count == kMaxDevices) return nullptr;
    registry.devices[registry.count++] = device;
    return device;
}

void unregister_device(Device& device) {
    {
        IrqSpinLockGuard guard(registry.lock);
        uint32_t index = 0;
        while (index < registry.count && registry.devices[index] != &device) ++index;
        if (index == registry.count) panic("block device %s is not registered", device.name);
        for (uint32_t i = 0; i < device.limits.hardware_queues; ++i)
            if (device.queues[i].busy_tags) panic("block device %s unregistered with commands in flight", device.name);
        for (const SoftwareQueue& software : device.software)
            if (!software.ios.empty()) panic("block device %s unregistered with Ios queued", device.name);
        for (uint32_t i = index + 1; i < registry.count; ++i) registry.devices[i - 1] = registry.devices[i];
        --registry.count;
    }
    for (uint32_t i = 0; i < device.limits.hardware_queues; ++i) {
        mm::free(device.queues[i].commands ? device.queues[i].commands[0].segment_storage : nullptr);
        mm::free(device.queues[i].commands);
        device.queues[i].~HardwareQueue();
    }
    mm::free(device.queues);
    device.~Device();
    mm::free(&device);
}

void submit(CompletionPort& port, Device& device, Io* const* ios, uint32_t count) {
    platform::InterruptsDisabled no_interrupts;  // this CPU's software queue stays ours
    const uint32_t cpu = this_cpu().index;
    const uint32_t queue = cpu % device.limits.hardware_queues;
    SoftwareQueue& software = device.software[cpu];
    PortAccess::note_submission(port, device, queue, count);
    const uint64_t now = time::now_ns();
    for (uint32_t i = 0; i < count; ++i) {
        Io& io = *ios[i];
        io.device = &device;
        io.port = &port;
        io.status = IoStatus::kPending;
        io.device_error = 0;
        io.dispatched_sectors = 0;
        io.commands_in_flight = 0;
        io.submit_cpu = cpu;
        io.submit_ns = now;
        const IoStatus refusal = check(device, io);
        if (refusal != IoStatus::kPending) {
            io.status = refusal;
            add(device.stats.refused);
            PortAccess::post(port, io);
            continue;
        }
        add(device.stats.ios);
        SpinLockGuard guard(software.lock);
        software.ios.push_back(io);
    }
    run_queue(device, queue);
}

void complete(Command& command, IoStatus status, uint32_t device_error) {
    Device& device = *command.device;
    HardwareQueue& queue = device.queues[command.queue];
    Io* finished[kMaxIosPerCommand];
    uint32_t finished_count = 0;
    {
        IrqSpinLockGuard guard(queue.lock);
        count_completion(device, command, source_of(queue), status);
        for (uint32_t i = 0; i < command.piece_count; ++i) {
            Io& io = *command.pieces[i].io;
            if (status != IoStatus::kOk && io.status == IoStatus::kPending) {
                io.status = status;  // the first failed part decides
                io.device_error = device_error;
            }
            if (--io.commands_in_flight > 0 || io.dispatched_sectors < io.sectors) continue;
            if (io.status == IoStatus::kPending) io.status = IoStatus::kOk;
            finished[finished_count++] = &io;
        }
        queue.busy_tags &= ~(1ull << command.tag);
    }
    for (uint32_t i = 0; i < finished_count; ++i) PortAccess::post(*finished[i]->port, *finished[i]);
    run_queue(device, command.queue);
}

void interrupt(Device& device, uint32_t queue) {
    add(device.stats.interrupts);
    reap(device, queue, CompletionSource::kInterrupt);
}

void count_interrupt(Device& device) { add(device.stats.interrupts); }

void reap_after_interrupt(Device& device, uint32_t queue) { reap(device, queue, CompletionSource::kInterrupt); }

// --- completion ports ---------------------------------------------------------------------------

CompletionPort::~CompletionPort() {
    if (outstanding_ != 0) panic("completion port destroyed with %u Io(s) outstanding", outstanding_);
}

bool CompletionPort::has_done() {
    IrqSpinLockGuard guard(lock_);
    return !done_.empty();
}

Io* CompletionPort::take_done() {
    IrqSpinLockGuard guard(lock_);
    return done_.pop_front();
}

// The completion work, in the waiting thread.
Io* CompletionPort::finish(Io& io) {
    {
        platform::InterruptsDisabled no_interrupts;
        io.completion_cpu = this_cpu().index;
    }
    __atomic_store_n(&outstanding_, outstanding_ - 1, __ATOMIC_RELAXED);
    if (io.on_complete) io.on_complete(io);
    return &io;
}

Io* CompletionPort::wait(uint64_t deadline_ns) {
    for (;;) {
        if (Io* io = take_done()) return finish(*io);
        if (outstanding_ == 0) return nullptr;
        if (poll_device_ && poll_device_->limits.poll_ns) {
            const uint64_t until = time::now_ns() + poll_device_->limits.poll_ns;
            poll(*this, *poll_device_, poll_queue_, until < deadline_ns ? until : deadline_ns);
            if (Io* io = take_done()) return finish(*io);
        }
        WaitResult result = WaitResult::kWoken;
        {
            platform::InterruptsDisabled no_interrupts;
            lock_.lock();
            if (done_.empty()) result = waiter_.wait(lock_, deadline_ns);
            lock_.unlock();
        }
        if (result == WaitResult::kTimedOut) {
            Io* io = take_done();
            return io ? finish(*io) : nullptr;
        }
    }
}

// --- synchronous helpers, lookup, statistics ---------------------------------------------------------

namespace {

IoStatus transfer(Device& device, Operation operation, uint64_t sector, uint32_t sectors, void* buffer,
                  uint32_t* device_error) {
    CompletionPort port;
    Io io;
    io.operation = operation;
    io.sector = sector;
    io.sectors = sectors;
    io.buffer = buffer;
    submit(port, device, io);
    port.wait();
    if (device_error) *device_error = io.device_error;
    return io.status;
}

}  // namespace

IoStatus read(Device& device, uint64_t sector, uint32_t sectors, void* buffer, uint32_t* device_error) {
    return transfer(device, Operation::kRead, sector, sectors, buffer, device_error);
}

IoStatus write(Device& device, uint64_t sector, uint32_t sectors, const void* buffer, uint32_t* device_error) {
    return transfer(device, Operation::kWrite, sector, sectors, const_cast<void*>(buffer), device_error);
}

IoStatus flush(Device& device, uint32_t* device_error) {
    return transfer(device, Operation::kFlush, 0, 0, nullptr, device_error);
}

uint32_t device_count() { return __atomic_load_n(&registry.count, __ATOMIC_ACQUIRE); }

Device& device_at(uint32_t index) { return *registry.devices[index]; }

Device* find_device(StringView name) {
    for (uint32_t i = 0; i < device_count(); ++i)
        if (StringView(registry.devices[i]->name) == name) return registry.devices[i];
    return nullptr;
}

DeviceInfo info(const Device& device) {
    return {device.name,
            device.sectors,
            device.read_only,
            device.limits.max_sectors,
            device.limits.queue_depth,
            device.limits.hardware_queues,
            device.limits.poll_ns != 0,
            device.limits.fua};
}

DeviceStats stats(const Device& device) {
    const DeviceStats& s = device.stats;
    const auto load = [](const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); };
    return {load(s.ios),
            load(s.refused),
            load(s.commands),
            load(s.merged_ios),
            load(s.split_ios),
            load(s.interrupts),
            load(s.interrupt_completions),
            load(s.polled_completions),
            load(s.inline_completions),
            load(s.errors),
            load(s.sectors_read),
            load(s.sectors_written),
            load(s.flushes),
            load(s.polls_given_way)};
}

}  // namespace hvkvm::guest::block
