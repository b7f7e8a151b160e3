// storvsp: the synthetic SCSI controller of the root partition (vmbus/services/storage.h). The VMM's
// vmbus disks are the LUNs 0..n-1 of path 0, target 0 of one controller; every other path/target
// is empty. The controller is one primary channel and up to kMaxSubChannels sub-channels (created
// on the guest's CREATE_SUB_CHANNELS, one per guest vCPU); each channel completes its requests on
// the vCPU the guest opened it on. All channels share the protocol state, the SCSI target and one
// io_uring (storage/io/io_engine.h), whose completions wake the event loop.
//
// Data path of a READ: the packet's GPA page list -> host addresses in the guest-RAM mapping
// (every page checked) -> iovecs -> io_uring READV on the disk (O_DIRECT for cache "none") -> the
// completion is written to the channel's outgoing ring with the others of its batch -> one
// publish -> at most one signal to the channel's vCPU (none while the guest polls with the ring's
// interrupt mask set). docs/storage.md describes it with the figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kvm/unique_fd.h"
#include "services/storvsp/storvsp_protocol.h"
#include "storage/io/disk_fault.h"
#include "storage/io/fault_injector.h"
#include "storage/io/io_engine.h"
#include "storage/scsi/scsi_target.h"
#include "vsp.h"

namespace hvkvm::root {

class StorvspChannel;

// One disk as the VMM hands it over (link kDisk): open, checked and locked.
struct StorvspDisk {
    std::string id;
    vmm::UniqueFd fd;
    uint64_t size_bytes = 0;
    bool read_only = false;
    bool direct = false;  // opened O_DIRECT: buffers and offsets 512-byte aligned
    storage::DiskFault fault;
};

struct DiskCounters {
    uint64_t reads = 0, writes = 0, flushes = 0, unmaps = 0;
    uint64_t bytes_read = 0, bytes_written = 0;
    uint64_t errors = 0;  // operations the host failed (injected ones included)
};

class Storvsp {
public:
    // Largest data buffer of one SRB (QUERY_PROPERTIES; Linux's max_sectors follows it). 1 MiB is
    // what the sequential benchmark moves per request (OpenVMM reports 256 KiB).
    static constexpr uint32_t kMaxTransferBytes = 1u << 20;
    // Sub-channels at most, whatever the vCPU count: the VMBus offer table has 64 entries.
    static constexpr uint16_t kMaxSubChannels = 32;
    static constexpr uint32_t kSectorAlignment = 512;

    // `engine` was built on the disks' descriptors, disk i as file i, and outlives the controller.
    // `poll_window` (config vmbus.poll_window_us): how long an idle channel polls its ring before it
    // unmasks and sleeps (poll_window.h).
    Storvsp(VspServices& services, std::vector<StorvspDisk> disks, storage::IoEngine& engine, uint32_t vcpu_count,
            std::chrono::nanoseconds poll_window);
    ~Storvsp();
    Storvsp(const Storvsp&) = delete;
    Storvsp& operator=(const Storvsp&) = delete;

    // The primary channel, to offer (it answers the "storage" management request).
    Vsp& primary();
    // Sub-channel `index` (1..), if it was ever created.
    StorvspChannel* channel(uint16_t index) const;
    nlohmann::json report() const;

    // For the channels.
    storvsp::ProtocolSession& session() { return session_; }
    storage::IoEngine& engine() { return engine_; }
    // The target at (path, target): the disks at 0/0, an empty one elsewhere.
    const storage::scsi::ScsiTarget& target_at(uint8_t path, uint8_t target, bool& exists) const;
    uint32_t disk_count() const { return static_cast<uint32_t>(disks_.size()); }
    const StorvspDisk& disk(uint32_t lun) const { return disks_[lun].config; }
    const storage::scsi::LogicalUnit& unit(uint32_t lun) const { return units_[lun]; }
    storage::FaultInjector& faults(uint32_t lun) { return disks_[lun].faults; }
    DiskCounters& disk_counters(uint32_t lun) { return disks_[lun].counters; }
    // CREATE_SUB_CHANNELS: offers sub-channels up to `count` (those not offered yet).
    bool create_sub_channels(uint16_t count);
    // The primary closed: sub-channels are gone (the VMBus server rescinded them), the protocol
    // starts over.
    void primary_closed();
    // Blocks until `channel` has no operation in flight (its close: no DMA into guest memory
    // after the guest got its channel back). Completions of other channels are recorded and
    // served on the next event-loop turn.
    void drain(const StorvspChannel& channel);

    // Tags of io_uring operations: which channel, request slot, operation of the request, and
    // the channel's open generation.
    static uint64_t make_tag(uint16_t channel, uint16_t slot, uint8_t op, uint32_t generation) {
        return uint64_t{generation} << 32 | static_cast<uint64_t>(channel & 0xff) << 24 | uint64_t{op} << 16 | slot;
    }

private:
    struct Disk {
        StorvspDisk config;
        storage::FaultInjector faults;
        DiskCounters counters;
    };

    void on_completions();
    void dispatch(uint64_t tag, int32_t result);
    void serve_marked();

    VspServices& services_;
    storage::IoEngine& engine_;
    std::chrono::nanoseconds poll_window_;
    std::vector<Disk> disks_;
    std::vector<storage::scsi::LogicalUnit> units_;  // built before the targets that point into it
    storage::scsi::ScsiTarget target_;
    storage::scsi::ScsiTarget empty_target_;
    storvsp::ProtocolSession session_;
    // Channel i is sub-channel index i (0: the primary); created on demand, never destroyed before
    // the controller (the VMBus server may still name a rescinded one).
    std::vector<std::unique_ptr<StorvspChannel>> channels_;
    uint16_t offered_sub_channels_ = 0;
    std::vector<bool> marked_;  // channels with completions to serve
};

}  // namespace hvkvm::root
