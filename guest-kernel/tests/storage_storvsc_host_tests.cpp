// storvsc against a host it must not trust: storvsp played inside the guest on the loopback test
// host (tests/vmbus_test_host.h), answering wrongly on purpose. A completion whose transaction id
// names no request in flight — a wrong sequence, or the same completion twice — is counted and
// dropped, and the request it imitates completes once, correctly; a controller rescinded with
// requests in flight fails them (no hang) and every later one.
#include <new>

#include "arch/x86_64/time.h"
#include "block/block.h"
#include "drivers/storvsc/storvsc.h"
#include "drivers/vmbus/bus.h"
#include "kernel/sched/thread.h"
#include "kernel/test/ktest.h"
#include "lib/string.h"
#include "storage/scsi/scsi_defs.h"
#include "tests/storage_test_support.h"
#include "tests/vmbus_test_host.h"

namespace hvkvm::guest {
namespace {

using block::IoStatus;
using test::HeapBuffer;
namespace wire = storvsc::wire;
namespace scsi = ::hvkvm::storage::scsi;
namespace ring = ::hvkvm::vmbus::ring;

constexpr uint64_t kDiskSectors = 2048;  // 1 MiB, one LUN
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kWrongSequence = uint64_t{1} << 40;

enum class Mischief : uint8_t {
    kNone,
    kStrayCompletions,  // before each READ's completion one with another sequence, after it a duplicate
    kHoldReads,         // READs are never answered
};

// Just enough of storvsp: initialization (6.2 only, no sub-channels), one 1 MiB LUN, READ/WRITE
// answered without moving data, and the mischief a test asks for.
class FakeStorvsp final : public test::LoopbackVsp {
public:
    using LoopbackVsp::LoopbackVsp;
    ~FakeStorvsp() override { close(); }

    void set_mischief(Mischief mischief) { __atomic_store_n(&mischief_, mischief, __ATOMIC_RELEASE); }
    uint32_t held() const { return __atomic_load_n(&held_, __ATOMIC_ACQUIRE); }

private:
    bool serve(const ring::IncomingPacket& packet) override {
        if (!packet.completion_requested()) return true;
        wire::Packet request{};
        reader().copy_payload(packet, 0, &request, packet.payload_size < sizeof request ? packet.payload_size : sizeof request);
        wire::Packet answer = request;
        answer.operation = wire::Operation::kCompleteIo;
        answer.status = wire::kStatusSuccess;
        switch (request.operation) {
            case wire::Operation::kBeginInitialization:
            case wire::Operation::kEndInitialization: break;
            case wire::Operation::kQueryProtocolVersion:
                if (request.version.major_minor != wire::kVersionWin10) answer.status = wire::kStatusRevisionMismatch;
                break;
            case wire::Operation::kQueryProperties:
                answer.properties = wire::ChannelProperties{};
                answer.properties.max_transfer_bytes = storvsc::kMaxTransferBytes;
                break;
            case wire::Operation::kExecuteSrb: return execute(packet, request.srb, answer);
            default: answer.status = wire::kStatusInvalidDeviceState;
        }
        return complete(packet.transaction_id, &answer, sizeof answer);
    }

    bool execute(const ring::IncomingPacket& packet, const wire::ScsiRequest& srb, wire::Packet& answer) {
        uint8_t data[36] = {};
        uint32_t moved = 0;
        answer.srb.srb_status = wire::kSrbStatusSuccess;
        answer.srb.scsi_status = scsi::kStatusGood;
        answer.srb.sense_info_length = 0;
        switch (srb.cdb[0]) {
            case scsi::kReportLuns: scsi::store_be32(data, 8), moved = 16; break;  // LUN 0 alone
            case scsi::kInquiry: moved = 36; break;                                  // a direct-access device
            case scsi::kServiceActionIn16:
                scsi::store_be64(data, kDiskSectors - 1), scsi::store_be32(data + 8, block::kSectorSize), moved = 32;
                break;
            case scsi::kModeSense6: data[0] = 3, moved = 4; break;
            case scsi::kRead16:
                if (__atomic_load_n(&mischief_, __ATOMIC_ACQUIRE) == Mischief::kHoldReads) {
                    __atomic_fetch_add(&held_, 1, __ATOMIC_RELEASE);
                    return true;
                }
                moved = srb.data_transfer_length;
                break;
            default: moved = srb.data_transfer_length; break;  // WRITE, SYNCHRONIZE CACHE
        }
        if (moved <= sizeof data) copy_to_guest(packet, data, moved);
        answer.srb.data_transfer_length = moved;
        const bool stray = srb.cdb[0] == scsi::kRead16 && __atomic_load_n(&mischief_, __ATOMIC_ACQUIRE) == Mischief::kStrayCompletions;
        if (stray && !complete(packet.transaction_id ^ kWrongSequence, &answer, sizeof answer)) return false;
        if (!complete(packet.transaction_id, &answer, sizeof answer)) return false;
        return !stray || complete(packet.transaction_id, &answer, sizeof answer);
    }

    // Guest memory is identity-mapped: the range's pages are addresses.
    void copy_to_guest(const ring::IncomingPacket& packet, const uint8_t* data, uint32_t bytes) {
        vmbus::GpaRange range;
        auto cursor = packet.ranges.cursor();
        if (packet.type != ring::PacketType::kGpaDirect || !cursor.next(range)) return;
        for (uint32_t i = 0; i < bytes && i < range.byte_count; ++i) {
            const uint64_t offset = uint64_t{range.byte_offset} + i;
            const uint64_t page = offset / vmbus::kHvPageSize;
            if (page >= range.pfn_count) return;
            *reinterpret_cast<uint8_t*>(range.pfns[page] * vmbus::kHvPageSize + offset % vmbus::kHvPageSize) = data[i];
        }
    }

    Mischief mischief_ = Mischief::kNone;
    uint32_t held_ = 0;
};

// A bus on its own test host offering one SCSI controller served by FakeStorvsp, with storvsc
// registered on it (its own Driver: a Driver is on one bus at a time). On the heap: too big for a
// test thread's stack.
class FakeController {
public:
    FakeController() : bus_(host_) {}
    ~FakeController() {
        bus_.drivers().unregister_driver(driver_);
        bus_.stop();
    }

    bool start() {
        vsp_ = new (std::nothrow) FakeStorvsp(bus_pointer_, options_);
        index_ = host_.add_offer(wire::kScsiInterfaceType, wire::scsi_controller_instance(7), vsp_);
        if (index_ < 0 || bus_.start() != vmbus::BusError::kNone) return false;
        bus_pointer_ = &bus_;
        bus_.drivers().register_driver(driver_);
        return storvsc::wait_until_ready(time::now_ns() + 5 * kSecond) && storvsc::find_controller(bus_);
    }
    bool rescind() { return host_.rescind(index_); }
    FakeStorvsp& vsp() { return *vsp_; }
    storvsc::Controller* controller() { return storvsc::find_controller(bus_); }

private:
    test::TestHostOptions options_;
    test::TestHost host_{options_};
    vmbus::Bus bus_;
    vmbus::Bus* bus_pointer_ = nullptr;  // what the VSP interrupts; set once the bus runs
    FakeStorvsp* vsp_ = nullptr;         // owned by the host
    int index_ = -1;
    vmbus::Driver driver_{"storvsc (test bus)", wire::kScsiInterfaceType, storvsc::probe, storvsc::remove, {}, false};
};

struct FakeHolder {
    FakeController* fake = new (std::nothrow) FakeController;
    ~FakeHolder() { delete fake; }
};

}  // namespace

KTEST(storage, storvsc_drops_completions_that_name_no_request_in_flight) {
    FakeHolder holder;
    KASSERT(holder.fake && holder.fake->start());
    storvsc::Controller& controller = *holder.fake->controller();
    const storvsc::LunInfo& disk = *storvsc::lun(controller, 0);
    KEXPECT_EQ(disk.sectors, kDiskSectors);
    holder.fake->vsp().set_mischief(Mischief::kStrayCompletions);
    const uint64_t unknown_before = storvsc::channel_counters(controller, 0).unknown_completions;
    HeapBuffer data(4096);
    constexpr uint32_t kReads = 16;
    for (uint32_t i = 0; i < kReads; ++i) KEXPECT(block::read(*disk.device, i * 8, 8, data.data()) == IoStatus::kOk);
    // A write between them is untouched by the strays around it.
    KEXPECT(block::write(*disk.device, 0, 8, data.data()) == IoStatus::kOk);
    const storvsc::ChannelCounters after = storvsc::channel_counters(controller, 0);
    KEXPECT_EQ(after.unknown_completions - unknown_before, 2u * kReads);  // one stale sequence, one duplicate each
    KEXPECT_EQ(block::stats(*disk.device).errors, 0u);
}

KTEST(storage, storvsc_rescinded_with_requests_in_flight_fails_them_and_every_later_one) {
    FakeHolder holder;
    KASSERT(holder.fake && holder.fake->start());
    storvsc::Controller& controller = *holder.fake->controller();
    block::Device& device = *storvsc::lun(controller, 0)->device;
    holder.fake->vsp().set_mischief(Mischief::kHoldReads);
    HeapBuffer data(4 * 4096);
    block::Io ios[4];
    block::CompletionPort port;
    for (uint32_t i = 0; i < 4; ++i) {
        ios[i].operation = block::Operation::kRead;
        ios[i].sector = 64 * i;  // not adjacent: four commands
        ios[i].sectors = 8;
        ios[i].buffer = data.data() + i * 4096;
        block::submit(port, device, ios[i]);
    }
    const uint64_t deadline = time::now_ns() + 5 * kSecond;
    while (holder.fake->vsp().held() < 4 && time::now_ns() < deadline) sched::sleep_ns(1'000'000);
    KASSERT(holder.fake->vsp().held() == 4);
    KASSERT(holder.fake->rescind());
    uint32_t failed = 0;
    while (block::Io* done = port.wait(time::now_ns() + 5 * kSecond)) {
        failed += done->status == IoStatus::kDeviceError && done->device_error == storvsc::kDetailControllerGone;
    }
    KEXPECT_EQ(failed, 4u);
    KEXPECT_EQ(port.outstanding(), 0u);
    uint32_t detail = 0;
    KEXPECT(block::read(device, 0, 8, data.data(), &detail) == IoStatus::kDeviceError);
    KEXPECT_EQ(detail, storvsc::kDetailControllerGone);
    KEXPECT(holder.fake->controller() == nullptr);  // no longer listed
}

}  // namespace hvkvm::guest
