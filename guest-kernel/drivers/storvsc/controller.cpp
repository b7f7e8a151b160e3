// storvsc's controllers: the primary channel's initialization, the LUN scan, sub-channels (one
// per vCPU), the block devices, removal; and the list of controllers storvsc.h exposes.
#include <new>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/time.h"
#include "drivers/storvsc/controller.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/cross_call.h"
#include "lib/format.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/paging.h"

namespace hvkvm::guest::storvsc {
namespace {

using block::IoStatus;

constexpr uint64_t kControlTimeoutNs = 5'000'000'000;
constexpr uint32_t kLogLinesPerSecond = 5;
constexpr uint32_t kMaxControllers = 8;

// The controllers initialized and not removed, and the count of those still setting up.
struct Registry {
    SpinLock lock;  // with interrupts off
    Controller* controllers[kMaxControllers] = {};
    uint32_t count = 0;
    uint32_t setting_up = 0;
    uint32_t next_disk = 0;  // sd<N> across controllers
    uint64_t poll_ns = kDefaultPollNs;
} registry;

vmbus::Driver storvsc_driver{"storvsc", wire::kScsiInterfaceType, probe, remove, {}, false};

void list(Controller& controller) {
    IrqSpinLockGuard guard(registry.lock);
    registry.controllers[registry.count++] = &controller;
}

void unlist(const Controller& controller) {
    IrqSpinLockGuard guard(registry.lock);
    uint32_t index = 0;
    while (index < registry.count && registry.controllers[index] != &controller) ++index;
    if (index == registry.count) return;
    for (; index + 1 < registry.count; ++index) registry.controllers[index] = registry.controllers[index + 1];
    --registry.count;
}

}  // namespace

// --- requests on the primary during initialization ---------------------------------------------------

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

// One data-in SCSI command on the primary into `buffer` (a kernel heap block of `bytes`, any
// alignment, at most 3 pages): true if it succeeded and the host moved at least `needed` bytes
// (`moved` says how many). The buffer is zeroed first: what the host did not fill reads as zeros.
bool Controller::scsi(uint8_t lun, const uint8_t* cdb, uint8_t cdb_length, void* buffer, uint32_t bytes, uint32_t needed,
                      uint32_t* moved) {
    memset(buffer, 0, bytes);
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
    const uint32_t transferred = request.answer.srb.data_transfer_length;
    if (moved) *moved = transferred;
    // Fewer bytes than asked is normal (INQUIRY, REPORT LUNS); more than the buffer is a host bug.
    return scsi_commands::interpret(request.answer, request.answer_size, transferred).status == IoStatus::kOk &&
           transferred <= bytes && transferred >= needed;
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
    const uint8_t length = scsi_commands::report_luns(cdb, scsi_commands::kReportLunsBytes);
    uint32_t moved = 0;
    if (!scsi(0, cdb, length, buffer, scsi_commands::kReportLunsBytes, 8, &moved)) return false;
    uint8_t numbers[kMaxLuns];
    const uint32_t found = scsi_commands::parse_report_luns(buffer, moved, numbers, kMaxLuns);
    for (uint32_t i = 0; i < found; ++i)
        if (!describe_lun(numbers[i], buffer)) kprint("storvsc: LUN %u: not a usable disk (INQUIRY, READ CAPACITY or MODE SENSE): not used\n", numbers[i]);
    return true;
}

bool Controller::describe_lun(uint8_t number, uint8_t* buffer) {
    uint8_t cdb[wire::kCdbMaxLength];
    uint8_t length = scsi_commands::inquiry(cdb, scsi_commands::kInquiryBytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kInquiryBytes, 1) || !scsi_commands::is_disk(buffer)) return false;
    length = scsi_commands::read_capacity16(cdb, scsi_commands::kReadCapacity16Bytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kReadCapacity16Bytes, scsi_commands::kReadCapacity16Needed)) return false;
    const scsi_commands::Capacity capacity = scsi_commands::parse_read_capacity16(buffer);
    if (capacity.block_bytes != block::kSectorSize || capacity.blocks == 0) {
        kprint("storvsc: LUN %u: %lu blocks of %u bytes (the block layer takes 512-byte sectors)\n", number,
               capacity.blocks, capacity.block_bytes);
        return false;
    }
    length = scsi_commands::mode_sense6(cdb, scsi_commands::kModeSense6Bytes);
    if (!scsi(number, cdb, length, buffer, scsi_commands::kModeSense6Bytes, scsi_commands::kModeSense6Bytes)) return false;
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
    lane->target_cpu = index % smp::configured_cpu_count();
    lane->pfns = static_cast<uint64_t*>(mm::allocate(sizeof(uint64_t) * kMaxPfns * kSlotsPerLane, vmbus::kHvPageSize));
    vmbus::ChannelOptions options;
    options.send_ring_pages = kSendRingPages;
    options.receive_ring_pages = kReceiveRingPages;
    options.target_cpu = lane->target_cpu;
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
        uint32_t number;
        {
            IrqSpinLockGuard guard(registry.lock);
            number = registry.next_disk++;
        }
        format(lun.name, sizeof lun.name, "sd%u", number);
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

void Controller::finish_setting_up() {
    IrqSpinLockGuard guard(registry.lock);
    if (!setting_up_) return;
    setting_up_ = false;
    --registry.setting_up;
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
        owner->finish_setting_up();
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
    if (!controller) {
        IrqSpinLockGuard guard(registry.lock);
        --registry.setting_up;
        return false;
    }
    if (!controller->open_lane(device, 0)) {
        controller->finish_setting_up();
        delete controller;
        return false;
    }
    if (!controller->initialize()) {
        kprint("storvsc: controller on relid %u: initialization failed\n", device.relid());
        controller->lane_removed(*controller->lane(0));  // the controller stays (gone): its lane is the device's
        controller->finish_setting_up();
        return true;
    }
    list(*controller);
    if (controller->all_lanes_open()) {
        controller->register_disks();
        controller->finish_setting_up();
    }
    return true;
}

}  // namespace

bool probe(vmbus::Device& device) {
    return device.offer().sub_channel_index != 0 ? attach_sub_channel(device) : probe_controller(device);
}

// The host rescinded a channel (or the bus unloads): its disks fail every request from now on.
// They stay registered with the block layer, as users may hold them, and the controller's memory
// stays with them; the controller leaves the list of controllers with its primary.
void remove(vmbus::Device& device) {
    auto* lane = static_cast<Lane*>(device.driver_data);
    if (!lane) return;
    Controller& controller = *lane->controller;
    if (lane->index == 0) unlist(controller);  // first: nobody finds it once its requests fail
    controller.lane_removed(*lane);
    controller.finish_setting_up();
    device.driver_data = nullptr;
}

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

Controller* find_controller(const vmbus::Bus& bus) {
    IrqSpinLockGuard guard(registry.lock);
    for (uint32_t i = 0; i < registry.count; ++i)
        if (&registry.controllers[i]->bus() == &bus) return registry.controllers[i];
    return nullptr;
}

ControllerInfo info(const Controller& controller) { return controller.describe(); }

const LunInfo* lun(const Controller& controller, uint32_t index) {
    const Lun* found = controller.lun_at(index);
    return found ? &found->info : nullptr;
}

ChannelCounters channel_counters(const Controller& controller, uint32_t channel) {
    const Lane* lane = controller.lane(channel);
    if (!lane) return {};
    const LaneCounters& c = lane->counters;
    ChannelCounters copy{lane->target_cpu, load(c.requests),   load(c.completions),
                         lane->requests.refused(), load(c.unsolicited), load(c.interrupts),
                         load(c.interrupt_cpu_mismatches), load(c.send_failures), load(c.late_packets), 0};
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
