// The emulated IDE controller: the primary channel (abi/devices.h ports, IOAPIC pin 14 edge), its
// master and slave the config's "ide" disks in order, and its bus-master block. Every register
// access is a PIO exit handled by IdeChannel on the vCPU thread; disk I/O and DMA run on this
// device's worker thread, while the guest sees BSY.
#include <condition_variable>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>
#include <thread>

#include "config/config.h"
#include "device.h"
#include "exits/io_bus.h"
#include "hvkvm/abi/ata.h"
#include "hvkvm/abi/devices.h"
#include "ide_channel.h"
#include "interrupts/interrupt_controller.h"
#include "kvm/guest_memory.h"
#include "log/rate_limited_log.h"

namespace hvkvm::devices {
namespace {

using ide::IdeChannel;

bool has_ide_disk(const vmm::VmConfig& config) {
    for (const vmm::DiskConfig& disk : config.disks)
        if (disk.bus == vmm::DiskBus::kIde) return true;
    return false;
}

// Guest RAM split at region boundaries, so that a DMA buffer may span two NUMA nodes' RAM.
class GuestRam final : public ide::DmaMemory {
public:
    explicit GuestRam(const vmm::GuestMemory& memory) : memory_(memory) {}

    bool append_ram(uint64_t gpa, uint64_t length, std::vector<std::span<std::byte>>& out) const override {
        const size_t first = out.size();
        while (length > 0) {
            const vmm::RamRegion* region = region_of(gpa);
            if (!region) {
                out.resize(first);
                return false;
            }
            const uint64_t n = std::min(length, region->gpa_end() - gpa);
            out.push_back(*memory_.translate(gpa, n));
            gpa += n;
            length -= n;
        }
        return true;
    }

private:
    const vmm::RamRegion* region_of(uint64_t gpa) const {
        for (const vmm::RamRegion& region : memory_.regions())
            if (gpa >= region.gpa && gpa < region.gpa_end()) return &region;
        return nullptr;
    }

    const vmm::GuestMemory& memory_;
};

class EdgeLine final : public ide::InterruptLine {
public:
    explicit EdgeLine(std::unique_ptr<vmm::EdgeInterrupt> line) : line_(std::move(line)) {}
    void trigger() override { line_->trigger(); }

private:
    std::unique_ptr<vmm::EdgeInterrupt> line_;
};

// What the guest (or a failing image) makes the controller say, rate-limited.
class ControllerLogs final : public ide::ChannelEvents {
public:
    void unsupported_command(uint8_t command) override { unsupported_.log("IDE: command {:#04x} not supported (aborted)", command); }
    void bus_master_error(std::string_view reason, uint64_t table_gpa) override {
        bus_master_.log("IDE: bus-master error, PRD table at {:#x}: {}", table_gpa, reason);
    }
    void host_error(const ide::Disk& disk, const char* operation, int error) override {
        host_.log("IDE: disk \"{}\": {} failed: {}", disk.id(), operation, std::strerror(error));
    }
    void report_suppressed() {
        unsupported_.report_suppressed();
        bus_master_.report_suppressed();
        host_.report_suppressed();
    }

private:
    vmm::RateLimitedLog unsupported_{spdlog::level::debug, "unsupported IDE commands"};
    vmm::RateLimitedLog bus_master_{spdlog::level::debug, "IDE bus-master errors"};
    vmm::RateLimitedLog host_{spdlog::level::warn, "IDE disk I/O errors"};
};

class IdeController final : public Device, public vmm::PioHandler, public ide::JobSignal {
public:
    explicit IdeController(DeviceContext& context)
        : disks_(take_ide_disks(context.disks)),
          ram_(context.memory),
          line_(context.interrupts.ioapic_edge(abi::kIdeInterruptPin)),
          channel_({disks_[0].get(), disks_[1].get()}, ram_, line_, *this, logs_) {
        context.bus.register_pio(abi::kIdeCommandBlockPort, abi::ata::kCommandBlockPorts, *this);
        context.bus.register_pio(abi::kIdeControlBlockPort, abi::ata::kControlBlockPorts, *this);
        context.bus.register_pio(abi::kIdeBusMasterPort, abi::ata::kBusMasterPorts, *this);
    }

    ~IdeController() override {
        stop();
        if (worker_.joinable()) worker_.join();
    }

    std::string_view name() const override { return "ide"; }

    void start() override {
        if (!worker_.joinable()) worker_ = std::thread([this] { run_jobs(); });
    }

    void stop() override {
        {
            std::lock_guard lock(worker_mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        logs_.report_suppressed();
    }

    void reset() override { channel_.reset(); }

    std::string report() const override {
        const ide::ChannelStats s = channel_.stats();
        return fmt::format(
            "{}, {}: {} commands ({} failed), {} PIO sectors, {} DMA transfers ({} MiB), {} flushes, {} interrupts; "
            "{} bus-master errors, {} host I/O errors, {} task-file writes while busy, {} data accesses without DRQ",
            describe_drive("master", 0), describe_drive("slave", 1), s.commands, s.errors, s.pio_sectors,
            s.dma_transfers, s.dma_bytes >> 20, s.flushes, s.interrupts, s.bus_master_errors, s.host_errors,
            s.ignored_writes, s.data_without_drq);
    }

    void pio_read(uint16_t base, uint16_t offset, std::span<uint8_t> data) override {
        if (base == abi::kIdeCommandBlockPort) channel_.read_command_block(offset, data);
        else if (base == abi::kIdeControlBlockPort) channel_.read_control_block(data);
        else channel_.read_bus_master(offset, data);
    }

    void pio_write(uint16_t base, uint16_t offset, std::span<const uint8_t> data) override {
        if (base == abi::kIdeCommandBlockPort) channel_.write_command_block(offset, data);
        else if (base == abi::kIdeControlBlockPort) channel_.write_control_block(data);
        else channel_.write_bus_master(offset, data);
    }

    void job_ready() override {
        {
            std::lock_guard lock(worker_mutex_);
            job_ready_ = true;
        }
        wake_.notify_one();
    }

private:
    // The config's IDE disks, in order: master, then slave (the config allows two).
    static std::array<std::unique_ptr<ide::FileDisk>, 2> take_ide_disks(std::vector<vmm::DiskImage>& images) {
        std::array<std::unique_ptr<ide::FileDisk>, 2> disks;
        size_t next = 0;
        for (vmm::DiskImage& image : images)
            if (image.config.bus == vmm::DiskBus::kIde && next < disks.size())
                disks[next++] = std::make_unique<ide::FileDisk>(std::move(image));
        return disks;
    }

    std::string describe_drive(const char* role, size_t index) const {
        if (!disks_[index]) return fmt::format("{} none", role);
        return fmt::format("{} \"{}\" ({} MiB{})", role, disks_[index]->id(), disks_[index]->sectors() >> 11,
                           disks_[index]->read_only() ? ", read-only" : "");
    }

    void run_jobs() {
        std::unique_lock lock(worker_mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || job_ready_; });
            if (stopping_) return;
            job_ready_ = false;
            lock.unlock();
            while (channel_.run_job()) {
            }
            lock.lock();
        }
    }

    std::array<std::unique_ptr<ide::FileDisk>, 2> disks_;
    GuestRam ram_;
    EdgeLine line_;
    ControllerLogs logs_;
    IdeChannel channel_;

    std::mutex worker_mutex_;  // guards job_ready_ and stopping_
    std::condition_variable wake_;
    bool job_ready_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace

extern const DeviceType kIdeControllerDevice{
    "ide", has_ide_disk,
    [](DeviceContext& context) -> std::unique_ptr<Device> { return std::make_unique<IdeController>(context); }};

}  // namespace hvkvm::devices
