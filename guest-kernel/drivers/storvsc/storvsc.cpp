#include "drivers/storvsc/storvsc.h"

#include <new>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "block/driver.h"
#include "drivers/storvsc/request_table.h"
#include "drivers/storvsc/scsi_commands.h"
#include "kernel/console.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/cross_call.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/paging.h"

namespace hvkvm::guest::storvsc {
namespace {

using block::IoStatus;
using vmbus::ring::RingError;
namespace ring = vmbus::ring;

// Slots per channel: a queue of kQueueDepth per LUN, and one for the raw (control) request.
constexpr uint32_t kRawSlot = kMaxLuns * kQueueDepth;
constexpr uint32_t kSlotsPerLane = kRawSlot + 1;
// A 1 MiB buffer that starts inside a page touches 257 pages.
constexpr uint32_t kMaxPfns = kMaxTransferBytes / vmbus::kHvPageSize + 1;
// The send ring holds every slot's largest packet at once (descriptor, range header and PFNs,
// the 64-byte vstor packet, trailer: ~2.2 KiB), so a send never finds it full; the receive ring
// every slot's completion (~88 bytes).
constexpr uint32_t kSendRingPages = 128;
constexpr uint32_t kReceiveRingPages = 8;
static_assert(uint64_t{kSendRingPages} * vmbus::kHvPageSize > uint64_t{kSlotsPerLane} * (48 + 8 * kMaxPfns + wire::kPacketSize + 8));
constexpr uint64_t kControlTimeoutNs = 5'000'000'000;
constexpr uint32_t kLogLinesPerSecond = 5;
constexpr uint32_t kMaxControllers = 4;

void bump(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }
uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// One request in flight: a block command, or a raw request whose waiter polls.
struct InFlight {
    block::Command* command = nullptr;
    RawRequest* raw = nullptr;
    uint32_t expected_bytes = 0;
};
using Requests = RequestTable<InFlight, kSlotsPerLane>;

}  // namespace

class Controller;

// One VMBus channel (the primary or a sub-channel) and the requests in flight on it: a block
// device's hardware queue `index` is this lane for every LUN.
struct Lane {
    Controller* controller = nullptr;
    vmbus::Device* device = nullptr;
    uint32_t index = 0;
    SpinLock use_lock;  // guards `channel` against its removal (with interrupts off)
    vmbus::Channel* channel = nullptr;
    Requests requests;
    uint64_t* pfns = nullptr;  // kMaxPfns per slot
    // One reaper at a time (several LUNs' queues, the interrupt and raw waiters share the lane).
    bool reaping = false;
    bool reap_again = false;
    SpinLock mask_lock;  // guards pollers
    uint32_t pollers = 0;
    bool raw_done = false;
    ChannelCounters counters{};

    uint32_t reap();
    uint32_t drain(vmbus::Channel& open);
    void handle(vmbus::Channel& open, const ring::IncomingPacket& packet);
    void set_polled(bool polled);
    // Never waits: the send ring holds every slot's packet, so a full ring is a failure (counted).
    RingError send(uint64_t id, const vmbus::GpaRange* range, const void* payload, uint32_t size);
};

struct Lun final : block::Driver {
    Controller* controller = nullptr;
    uint32_t index = 0;
    char name[8] = {};
    LunInfo info{};

    void start(block::Command& command) override;
    uint32_t reap(uint32_t queue) override;
    void set_completion_interrupts(uint32_t queue, bool enabled) override;
};

class Controller {
public:
    explicit Controller(vmbus::Device& primary) : primary_(primary) {}

    bool initialize();
    bool open_lane(vmbus::Device& device, uint32_t index);
    void lane_removed(Lane& lane);
    bool takes_sub_channel(const vmbus::Device& device) const;
    bool all_lanes_open() const { return lane_count_ == expected_lanes_; }
    void register_disks();
    void log_error(const Lun& lun, const block::Command& command, const scsi_commands::Outcome& outcome);

    RawResult execute_raw(uint32_t lane, RawRequest& request, uint64_t timeout_ns);
    Lane* lane(uint32_t index) const { return index < kMaxChannels ? lanes_[index] : nullptr; }
    bool gone() const { return __atomic_load_n(&gone_, __ATOMIC_ACQUIRE); }
    bool ready() const { return __atomic_load_n(&ready_, __ATOMIC_ACQUIRE); }
    const Lun* lun_at(uint32_t index) const { return index < lun_count_ ? &luns_[index] : nullptr; }
    ControllerInfo describe() const {
        return {version_, properties_.max_transfer_bytes, properties_.max_channel_count, lane_count_, lun_count_, ready()};
    }

private:
    bool control(wire::Operation operation, const void* body, uint32_t body_size, wire::Packet& answer);
    bool negotiate_version();
    bool scsi(uint8_t lun, const uint8_t* cdb, uint8_t cdb_length, void* buffer, uint32_t bytes,
              scsi_commands::Outcome& outcome);
    bool find_luns(uint8_t* buffer);
    bool describe_lun(uint8_t lun, uint8_t* buffer);
    void ask_for_sub_channels();

    vmbus::Device& primary_;
    Lane* lanes_[kMaxChannels] = {};
    uint32_t lane_count_ = 0;       // open
    uint32_t expected_lanes_ = 1;   // the primary and the sub-channels the host agreed to
    Lun luns_[kMaxLuns];
    uint32_t lun_count_ = 0;
    uint16_t version_ = 0;
    wire::ChannelProperties properties_{};
    uint32_t max_transfer_ = 0;     // what the block devices get
    bool ready_ = false;
    bool gone_ = false;
    Mutex raw_lock_;                // one raw request at a time
    SpinLock log_lock_;             // guards the three below
    uint64_t log_window_ns_ = 0;
    uint32_t logged_in_window_ = 0;
    uint64_t suppressed_ = 0;
};

namespace {

// The controllers bound so far and the count still setting up.
struct Registry {
    SpinLock lock;  // with interrupts off
    Controller* controllers[kMaxControllers] = {};
    uint32_t count = 0;
    uint32_t setting_up = 0;
    uint32_t next_disk = 0;  // sd<N> across controllers
    uint64_t poll_ns = kDefaultPollNs;
} registry;

bool probe(vmbus::Device& device);
void remove(vmbus::Device& device);

vmbus::Driver storvsc_driver{"storvsc", wire::kScsiInterfaceType, probe, remove, {}, false};

void finished_setting_up() {
    IrqSpinLockGuard guard(registry.lock);
    --registry.setting_up;
}

void lane_interrupt(void* context) {
    Lane& lane = *static_cast<Lane*>(context);
    bump(lane.counters.interrupts);
    if (this_cpu().index != lane.counters.target_cpu) bump(lane.counters.interrupt_cpu_mismatches);
    Controller& controller = *lane.controller;
    // Before the disks exist, requests are raw and their waiters poll.
    if (const Lun* first = controller.ready() ? controller.lun_at(0) : nullptr) block::interrupt(*first->info.device, lane.index);
}

}  // namespace

// --- the lane: sending and reaping -------------------------------------------------------------------

RingError Lane::send(uint64_t id, const vmbus::GpaRange* range, const void* payload, uint32_t size) {
    IrqSpinLockGuard guard(use_lock);
    if (!channel) return RingError::kNotAttached;
    const RingError error = range ? channel->send_gpa_direct(id, range, 1, payload, size, true, 0)
                                  : channel->send_inband(id, payload, size, true, 0);
    if (error == RingError::kOk) bump(counters.requests);
    else bump(counters.send_failures);
    return error;
}

uint32_t Lane::reap() {
    platform::InterruptsDisabled no_interrupts;
    uint32_t completed = 0;
    __atomic_store_n(&reap_again, true, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&reap_again, __ATOMIC_SEQ_CST) && !__atomic_exchange_n(&reaping, true, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&reap_again, false, __ATOMIC_SEQ_CST);
        if (vmbus::Channel* open = __atomic_load_n(&channel, __ATOMIC_SEQ_CST)) completed += drain(*open);
        __atomic_store_n(&reaping, false, __ATOMIC_SEQ_CST);
    }
    return completed;
}

// Every packet the host has published, then one release (one index store, at most one signal).
uint32_t Lane::drain(vmbus::Channel& open) {
    uint32_t packets = 0;
    for (;;) {
        ring::IncomingPacket packet;
        const RingError error = open.next(packet);
        if (error == RingError::kEmpty) break;
        if (error != RingError::kOk) {
            kprint("storvsc: channel %u: host -> guest ring corrupt (%s): no more completions from it\n", index,
                   ring::ring_error_name(error));
            break;
        }
        handle(open, packet);
        ++packets;
    }
    if (packets) open.release();
    return packets;
}

void Lane::handle(vmbus::Channel& open, const ring::IncomingPacket& packet) {
    if (packet.type != ring::PacketType::kCompletion) {
        bump(counters.unsolicited);  // ENUMERATE_BUS, REMOVE_DEVICE: disks are fixed here
        return;
    }
    InFlight request;
    if (!requests.take(packet.transaction_id, request)) return;  // counted by the table
    bump(counters.completions);
    wire::Packet answer{};
    const uint32_t copied = packet.payload_size < sizeof answer ? packet.payload_size : sizeof answer;
    open.copy_payload(packet, 0, &answer, copied);
    if (request.raw) {
        request.raw->answer = answer;
        request.raw->answer_size = packet.payload_size;
        __atomic_store_n(&raw_done, true, __ATOMIC_RELEASE);
        return;
    }
    block::Command& command = *request.command;
    const scsi_commands::Outcome outcome = scsi_commands::interpret(answer, packet.payload_size, request.expected_bytes);
    if (outcome.status != IoStatus::kOk)
        controller->log_error(*controller->lun_at(static_cast<uint32_t>(Requests::slot_of(packet.transaction_id) / kQueueDepth)),
                              command, outcome);
    block::complete(command, outcome.status, outcome.detail);
}

// While any LUN's waiter polls this channel, the host is asked not to interrupt.
void Lane::set_polled(bool polled) {
    IrqSpinLockGuard guard(mask_lock);
    if (polled ? pollers++ != 0 : --pollers != 0) return;
    vmbus::Channel* open = channel;
    if (!open) return;
    if (polled) open->mask_interrupts();
    else open->unmask_interrupts();  // what slipped in is reaped by the block layer's last look
}

// --- the block driver --------------------------------------------------------------------------------

void Lun::start(block::Command& command) {
    Lane& lane = *controller->lane(command.queue);
    const uint32_t slot_index = index * kQueueDepth + command.tag;

    wire::Packet packet{};
    packet.operation = wire::Operation::kExecuteSrb;
    packet.flags = wire::kFlagRequestCompletion;
    wire::ScsiRequest& srb = packet.srb;
    srb.length = sizeof(wire::ScsiRequest);
    srb.lun = info.lun;
    srb.sense_info_length = wire::kSenseBufferSize;
    srb.srb_flags = wire::kSrbFlagDisableSynchTransfer;
    const uint32_t bytes = command.sectors * block::kSectorSize;
    vmbus::GpaRange range{};
    if (command.operation == block::Operation::kFlush) {
        srb.cdb_length = scsi_commands::synchronize_cache10(srb.cdb);
        srb.data_in = wire::kDataNone;
    } else {
        const bool write = command.operation == block::Operation::kWrite;
        srb.cdb_length = scsi_commands::read_write16(srb.cdb, write, command.fua, command.sector, command.sectors);
        srb.data_in = write ? wire::kDataOut : wire::kDataIn;
        srb.srb_flags |= write ? wire::kSrbFlagDataOut : wire::kSrbFlagDataIn;
        srb.data_transfer_length = bytes;
        // The block layer joins the command's pages into one page list (Limits::page_list).
        uint64_t* pfns = lane.pfns + uint64_t{slot_index} * kMaxPfns;
        uint32_t count = 0;
        for (uint32_t i = 0; i < command.segment_count; ++i) {
            const block::Segment& segment = command.segments[i];
            for (uint64_t page = segment.physical & ~uint64_t{vmbus::kHvPageSize - 1};
                 page < segment.physical + segment.bytes && count < kMaxPfns; page += vmbus::kHvPageSize)
                pfns[count++] = page / vmbus::kHvPageSize;
        }
        range = {bytes, static_cast<uint32_t>(command.segments[0].physical % vmbus::kHvPageSize), pfns, count};
    }
    const uint64_t id = lane.requests.claim(slot_index, InFlight{&command, nullptr, bytes});
    if (controller->gone() ||
        lane.send(id, command.operation == block::Operation::kFlush ? nullptr : &range, &packet, sizeof packet) != RingError::kOk) {
        InFlight unsent;
        if (lane.requests.cancel(slot_index, id, unsent)) block::complete(command, IoStatus::kDeviceError, kDetailSendFailed);
    }
}

uint32_t Lun::reap(uint32_t queue) { return controller->lane(queue)->reap(); }

void Lun::set_completion_interrupts(uint32_t queue, bool enabled) { controller->lane(queue)->set_polled(!enabled); }

// --- raw requests --------------------------------------------------------------------------------------

RawResult Controller::execute_raw(uint32_t lane_index, RawRequest& request, uint64_t timeout_ns) {
    MutexGuard one_at_a_time(raw_lock_);
    Lane* lane = this->lane(lane_index);
    if (!lane || gone()) return RawResult::kGone;
    __atomic_store_n(&lane->raw_done, false, __ATOMIC_RELAXED);
    request.answer_size = 0;
    const uint64_t deadline = time::now_ns() + timeout_ns;
    const uint64_t id = lane->requests.claim(kRawSlot, InFlight{nullptr, &request, 0});
    InFlight abandoned;
    if (lane->send(id, request.range, request.payload, request.payload_size) != RingError::kOk) {
        lane->requests.cancel(kRawSlot, id, abandoned);
        return RawResult::kSendFailed;
    }
    for (;;) {
        lane->reap();
        if (__atomic_load_n(&lane->raw_done, __ATOMIC_ACQUIRE)) return lane->channel ? RawResult::kOk : RawResult::kGone;
        if (time::now_ns() > deadline && lane->requests.cancel(kRawSlot, id, abandoned)) return RawResult::kTimeout;
        x86::pause();
    }
}

bool Controller::control(wire::Operation operation, const void* body, uint32_t body_size, wire::Packet& answer) {
    wire::Packet packet{};
    packet.operation = operation;
    packet.flags = wire::kFlagRequestCompletion;
    if (body_size) memcpy(packet.body, body, body_size);
    RawRequest request;
    request.payload = &packet;
    request.payload_size = sizeof packet;
    const RawResult result = execute_raw(0, request, kControlTimeoutNs);
    answer = request.answer;
    return result == RawResult::kOk && request.answer_size >= wire::kPacketHeaderSize &&
           answer.operation == wire::Operation::kCompleteIo && answer.status == wire::kStatusSuccess;
}

// One SCSI command on the primary, its data in `buffer` (a kernel heap block; any alignment).
bool Controller::scsi(uint8_t lun, const uint8_t* cdb, uint8_t cdb_length, void* buffer, uint32_t bytes,
                      scsi_commands::Outcome& outcome) {
    wire::Packet packet{};
    packet.operation = wire::Operation::kExecuteSrb;
    packet.flags = wire::kFlagRequestCompletion;
    packet.srb.length = sizeof(wire::ScsiRequest);
    packet.srb.lun = lun;
    packet.srb.cdb_length = cdb_length;
    memcpy(packet.srb.cdb, cdb, cdb_length);
    packet.srb.sense_info_length = wire::kSenseBufferSize;
    packet.srb.data_in = wire::kDataIn;
    packet.srb.data_transfer_length = bytes;
    const auto address = reinterpret_cast<uint64_t>(buffer);
    uint64_t pfns[3];
    const uint64_t first_page = address & ~uint64_t{vmbus::kHvPageSize - 1};
    uint32_t count = 0;
    for (uint64_t page = first_page; page < address + bytes && count < 3; page += vmbus::kHvPageSize)
        pfns[count++] = mm::translate(page) / vmbus::kHvPageSize;
    const vmbus::GpaRange range{bytes, static_cast<uint32_t>(address % vmbus::kHvPageSize), pfns, count};
    RawRequest request;
    request.payload = &packet;
    request.payload_size = sizeof packet;
    request.range = &range;
    if (execute_raw(0, request, kControlTimeoutNs) != RawResult::kOk) return false;
    outcome = scsi_commands::interpret(request.answer, request.answer_size, request.answer.srb.data_transfer_length);
    return outcome.status == IoStatus::kOk;
}

// --- initialization -------------------------------------------------------------------------------------

bool Controller::negotiate_version() {
    constexpr uint16_t kNewestFirst[] = {wire::kVersionWin10, wire::kVersionWin8_1, wire::kVersionWin8};
    for (const uint16_t version : kNewestFirst) {
        const wire::ProtocolVersion body{version, 0};
        wire::Packet answer;
        if (control(wire::Operation::kQueryProtocolVersion, &body, sizeof body, answer)) {
            version_ = version;
            return true;
        }
    }
    return false;
}

bool Controller::find_luns(uint8_t* buffer) {
    uint8_t cdb[wire::kCdbMaxLength];
    scsi_commands::Outcome outcome;
    const uint8_t length = scsi_commands::report_luns(cdb, scsi_commands::kReportLunsBytes);
    if (!scsi(0, cdb, length, buffer, scsi_commands::kReportLunsBytes, outcome)) return false;
    uint8_t numbers[kMaxLuns];
    const uint32_t found = scsi_commands::parse_report_luns(buffer, scsi_commands::kReportLunsBytes, numbers, kMaxLuns);
    for (uint32_t i = 0; i < found; ++i) describe_lun(numbers[i], buffer);
    return true;
}

bool Controller::describe_lun(uint8_t number, uint8_t* buffer) {
    uint8_t cdb[wire::kCdbMaxLength];
    scsi_commands::Outcome outcome;
    uint8_t length = scsi_commands::inquiry(cdb, scsi_commands::kInquiryBytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kInquiryBytes, outcome) || !scsi_commands::is_disk(buffer)) return false;
    length = scsi_commands::read_capacity16(cdb, scsi_commands::kReadCapacity16Bytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kReadCapacity16Bytes, outcome)) return false;
    const scsi_commands::Capacity capacity = scsi_commands::parse_read_capacity16(buffer);
    if (capacity.block_bytes != block::kSectorSize) {
        kprint("storvsc: LUN %u: %u-byte blocks (the block layer takes 512): not used\n", number, capacity.block_bytes);
        return false;
    }
    length = scsi_commands::mode_sense6(cdb, scsi_commands::kModeSense6Bytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kModeSense6Bytes, outcome)) return false;
    Lun& lun = luns_[lun_count_];
    lun.controller = this;
    lun.index = lun_count_;
    lun.info = LunInfo{lun.name, number, capacity.blocks, scsi_commands::write_protected(buffer), nullptr};
    ++lun_count_;
    return true;
}

void Controller::ask_for_sub_channels() {
    const uint32_t cpus = smp::configured_cpu_count();
    uint32_t wanted = cpus - 1;
    if (wanted > properties_.max_channel_count) wanted = properties_.max_channel_count;
    if (wanted > kMaxChannels - 1) wanted = kMaxChannels - 1;
    if (wanted == 0 || !(properties_.flags & wire::kChannelSupportsMultiChannel)) return;
    const uint16_t count = static_cast<uint16_t>(wanted);
    wire::Packet answer;
    if (!control(wire::Operation::kCreateSubChannels, &count, sizeof count, answer)) {
        kprint("storvsc: CREATE_SUB_CHANNELS(%u) refused (status %#x): one channel for every CPU\n", wanted, answer.status);
        return;
    }
    expected_lanes_ = 1 + wanted;
}

bool Controller::initialize() {
    wire::Packet answer;
    if (!control(wire::Operation::kBeginInitialization, nullptr, 0, answer)) return false;
    if (!negotiate_version()) {
        kprint("storvsc: the host takes none of the protocol versions 6.2, 6.0, 5.1\n");
        return false;
    }
    if (!control(wire::Operation::kQueryProperties, nullptr, 0, answer)) return false;
    properties_ = answer.properties;
    max_transfer_ = properties_.max_transfer_bytes < kMaxTransferBytes ? properties_.max_transfer_bytes : kMaxTransferBytes;
    max_transfer_ &= ~(vmbus::kHvPageSize - 1);
    if (max_transfer_ == 0) {
        kprint("storvsc: the host's max transfer (%u bytes) is below a page\n", properties_.max_transfer_bytes);
        return false;
    }
    if (!control(wire::Operation::kEndInitialization, nullptr, 0, answer)) return false;
    auto* buffer = static_cast<uint8_t*>(mm::allocate(scsi_commands::kReportLunsBytes, vmbus::kHvPageSize));
    const bool scanned = buffer && find_luns(buffer);
    mm::free(buffer);
    if (!scanned) return false;
    ask_for_sub_channels();
    return true;
}

bool Controller::open_lane(vmbus::Device& device, uint32_t index) {
    auto* lane = new (std::nothrow) Lane;
    if (!lane) return false;
    lane->controller = this;
    lane->device = &device;
    lane->index = index;
    lane->counters.target_cpu = index % smp::configured_cpu_count();
    lane->pfns = static_cast<uint64_t*>(mm::allocate(sizeof(uint64_t) * kMaxPfns * kSlotsPerLane, vmbus::kHvPageSize));
    vmbus::ChannelOptions options;
    options.send_ring_pages = kSendRingPages;
    options.receive_ring_pages = kReceiveRingPages;
    options.target_cpu = lane->counters.target_cpu;
    options.interrupt_handler = lane_interrupt;
    options.interrupt_context = lane;
    options.driver_masks_interrupts = true;
    vmbus::Channel* channel = nullptr;
    const vmbus::BusError error = lane->pfns ? vmbus::Channel::open(device, options, channel) : vmbus::BusError::kNoMemory;
    if (error != vmbus::BusError::kNone) {
        kprint("storvsc: channel %u (relid %u) not opened: %s\n", index, device.relid(), vmbus::bus_error_name(error));
        mm::free(lane->pfns);
        delete lane;
        return false;
    }
    lane->channel = channel;
    device.driver_data = lane;
    lanes_[index] = lane;
    ++lane_count_;
    return true;
}

bool Controller::takes_sub_channel(const vmbus::Device& device) const {
    const uint32_t index = device.offer().sub_channel_index;
    return !ready() && !gone() && device.instance() == primary_.instance() && index < expected_lanes_ && !lanes_[index];
}

void Controller::register_disks() {
    block::Limits limits;
    limits.max_sectors = max_transfer_ / block::kSectorSize;
    limits.max_segments = max_transfer_ / vmbus::kHvPageSize + 1;
    limits.max_segment_bytes = max_transfer_;
    limits.queue_depth = kQueueDepth;
    limits.hardware_queues = lane_count_;
    limits.poll_ns = __atomic_load_n(&registry.poll_ns, __ATOMIC_RELAXED);
    limits.fua = true;
    limits.page_list = true;
    for (uint32_t i = 0; i < lun_count_; ++i) {
        Lun& lun = luns_[i];
        {
            IrqSpinLockGuard guard(registry.lock);
            const uint32_t number = registry.next_disk++;
            lun.name[0] = 's';
            lun.name[1] = 'd';
            lun.name[2] = static_cast<char>('0' + number % 10);
        }
        lun.info.device = block::register_device(lun.name, lun.info.sectors, lun.info.read_only, limits, lun);
        if (!lun.info.device) {
            kprint("storvsc: %s not registered with the block layer\n", lun.name);
            continue;
        }
        kprint("storvsc: %s: LUN %u, %lu MiB%s, %u channel(s), max transfer %u KiB, protocol %u.%u\n", lun.name,
               lun.info.lun, lun.info.sectors * block::kSectorSize >> 20, lun.info.read_only ? ", read-only" : "",
               lane_count_, max_transfer_ >> 10, version_ >> 8, version_ & 0xff);
    }
    // Disks that never registered would leave the interrupt handler reaping for nobody.
    while (lun_count_ > 0 && !luns_[lun_count_ - 1].info.device) --lun_count_;
    __atomic_store_n(&ready_, lun_count_ > 0 && luns_[0].info.device, __ATOMIC_RELEASE);
}

void Controller::lane_removed(Lane& lane) {
    __atomic_store_n(&gone_, true, __ATOMIC_RELEASE);
    vmbus::Channel* channel;
    {
        IrqSpinLockGuard guard(lane.use_lock);
        channel = lane.channel;
        __atomic_store_n(&lane.channel, nullptr, __ATOMIC_SEQ_CST);
    }
    while (__atomic_load_n(&lane.reaping, __ATOMIC_SEQ_CST)) x86::pause();
    if (channel) channel->close();  // the host finishes what it had (no DMA after this)
    for (uint32_t slot = 0; slot < kSlotsPerLane; ++slot) {
        InFlight abandoned;
        if (!lane.requests.cancel(slot, lane.requests.id_in(slot), abandoned)) continue;
        if (abandoned.command) block::complete(*abandoned.command, IoStatus::kDeviceError, kDetailControllerGone);
        if (abandoned.raw) __atomic_store_n(&lane.raw_done, true, __ATOMIC_RELEASE);
    }
}

void Controller::log_error(const Lun& lun, const block::Command& command, const scsi_commands::Outcome& outcome) {
    const uint64_t now = time::now_ns();
    uint64_t suppressed = 0;
    {
        IrqSpinLockGuard guard(log_lock_);
        if (now - log_window_ns_ > 1'000'000'000) {
            log_window_ns_ = now;
            logged_in_window_ = 0;
            suppressed = suppressed_;
            suppressed_ = 0;
        }
        if (logged_in_window_ == kLogLinesPerSecond) {
            ++suppressed_;
            return;
        }
        ++logged_in_window_;
    }
    if (suppressed) kprint("storvsc: %lu error(s) not logged\n", suppressed);
    const char* operation = command.operation == block::Operation::kRead    ? "read"
                            : command.operation == block::Operation::kWrite ? "write"
                                                                            : "flush";
    if (outcome.has_sense)
        kprint("storvsc: %s: %s of %u sectors at %lu: %s, SRB status %s, sense key %#x ASC/ASCQ %02x/%02x\n", lun.name,
               operation, command.sectors, command.sector, block::describe(outcome.status),
               wire::srb_status_name(static_cast<uint8_t>(outcome.detail >> 24)), outcome.sense_key, outcome.asc, outcome.ascq);
    else
        kprint("storvsc: %s: %s of %u sectors at %lu: %s (detail %#x)\n", lun.name, operation, command.sectors,
               command.sector, block::describe(outcome.status), outcome.detail);
}

// --- probe and remove ------------------------------------------------------------------------------------

namespace {

bool attach_sub_channel(vmbus::Device& device) {
    Controller* owner = nullptr;
    {
        IrqSpinLockGuard guard(registry.lock);
        for (uint32_t i = 0; i < registry.count && !owner; ++i)
            if (registry.controllers[i]->takes_sub_channel(device)) owner = registry.controllers[i];
    }
    if (!owner) {
        kprint("storvsc: sub-channel %u (relid %u) matches no controller waiting for it\n", device.offer().sub_channel_index,
               device.relid());
        return false;
    }
    if (!owner->open_lane(device, device.offer().sub_channel_index)) return false;
    if (owner->all_lanes_open()) {
        owner->register_disks();
        finished_setting_up();
    }
    return true;
}

bool probe_controller(vmbus::Device& device) {
    {
        IrqSpinLockGuard guard(registry.lock);
        if (registry.count == kMaxControllers) return false;
        ++registry.setting_up;
    }
    auto* controller = new (std::nothrow) Controller(device);
    if (!controller || !controller->open_lane(device, 0)) {
        delete controller;
        finished_setting_up();
        return false;
    }
    if (!controller->initialize()) {
        kprint("storvsc: controller on relid %u: initialization failed\n", device.relid());
        Lane* primary = controller->lane(0);
        controller->lane_removed(*primary);  // the controller stays (gone): its lane is the device's
        finished_setting_up();
        return true;
    }
    {
        IrqSpinLockGuard guard(registry.lock);
        registry.controllers[registry.count++] = controller;
    }
    if (controller->all_lanes_open()) {
        controller->register_disks();
        finished_setting_up();
    }
    return true;
}

bool probe(vmbus::Device& device) {
    return device.offer().sub_channel_index != 0 ? attach_sub_channel(device) : probe_controller(device);
}

// The host rescinded a channel (or the bus unloads): its disks fail every request from now on.
// They stay registered, as users may hold them; the controller's memory stays with them.
void remove(vmbus::Device& device) {
    auto* lane = static_cast<Lane*>(device.driver_data);
    if (!lane) return;
    lane->controller->lane_removed(*lane);
    device.driver_data = nullptr;
}

}  // namespace

// --- the interfaces ---------------------------------------------------------------------------------------

vmbus::Driver& driver() { return storvsc_driver; }

void set_poll_ns(uint64_t poll_ns) { __atomic_store_n(&registry.poll_ns, poll_ns, __ATOMIC_RELAXED); }

bool wait_until_ready(uint64_t deadline_ns) {
    for (;;) {
        {
            IrqSpinLockGuard guard(registry.lock);
            if (registry.setting_up == 0) return true;
        }
        if (time::now_ns() > deadline_ns) return false;
        sched::sleep_ns(1'000'000);
    }
}

uint32_t controller_count() {
    IrqSpinLockGuard guard(registry.lock);
    return registry.count;
}

Controller* controller_at(uint32_t index) {
    IrqSpinLockGuard guard(registry.lock);
    return index < registry.count ? registry.controllers[index] : nullptr;
}

ControllerInfo info(const Controller& controller) { return controller.describe(); }

const LunInfo* lun(const Controller& controller, uint32_t index) {
    const Lun* found = controller.lun_at(index);
    return found ? &found->info : nullptr;
}

ChannelCounters channel_counters(const Controller& controller, uint32_t channel) {
    const Lane* lane = controller.lane(channel);
    if (!lane) return {};
    const ChannelCounters& c = lane->counters;
    ChannelCounters copy{c.target_cpu,       load(c.requests),   load(c.completions),
                         lane->requests.refused(), load(c.unsolicited), load(c.interrupts),
                         load(c.interrupt_cpu_mismatches), load(c.send_failures), 0};
    IrqSpinLockGuard guard(const_cast<Lane*>(lane)->use_lock);
    if (lane->channel) copy.host_signals = lane->channel->stats().host_signals;
    return copy;
}

const LunInfo* find_lun(const block::Device& device) {
    for (uint32_t c = 0; c < controller_count(); ++c) {
        const Controller& controller = *controller_at(c);
        for (uint32_t i = 0; const Lun* found = controller.lun_at(i); ++i)
            if (found->info.device == &device) return &found->info;
    }
    return nullptr;
}

RawResult execute_raw(Controller& controller, uint32_t channel, RawRequest& request, uint64_t timeout_ns) {
    return controller.execute_raw(channel, request, timeout_ns);
}

}  // namespace hvkvm::guest::storvsc
