// VMBus (config `vmbus.enabled`, on by default): the root-partition process that hosts the VMBus
// channel server and every VSP, started and watched by the VMM (vmm/root_partition/). Whatever
// the guest's VSCs do reaches it through the SynIC and the hypercall page; a root partition that
// dies or hangs stops the VM, naming the channels it was serving.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "config/config.h"
#include "device.h"
#include "root_partition/root_partition_process.h"
#include "storage/disk_image.h"

namespace hvkvm::devices {
namespace {

const char* application_state_name(uint32_t state) {
    static constexpr const char* kNames[] = {"unknown", "healthy", "critical", "stopped"};
    return state < std::size(kNames) ? kNames[state] : "?";
}

// The vmbus disks for storvsp, in config order (their LUNs); the images stay the VMM's.
std::vector<vmm::RootPartitionDisk> root_disks(const std::vector<vmm::DiskImage>& images, const vmm::DebugConfig& debug) {
    std::vector<vmm::RootPartitionDisk> disks;
    for (const vmm::DiskImage& image : images) {
        storage::DiskFault fault;
        if (debug.disk_fault && debug.disk_fault->disk == image.config.id) fault = debug.disk_fault->fault;
        disks.push_back({image.config.id, image.fd.get(), image.size_bytes, image.config.read_only,
                         image.config.cache == vmm::DiskCache::kNone, fault});
    }
    return disks;
}

class Vmbus final : public Device {
public:
    explicit Vmbus(DeviceContext& context)
        : fault_(context.config.debug.root_partition_fault),
          shutdown_timeout_ms_(context.config.vmbus.shutdown_timeout_ms),
          disks_(vmm::take_disks(context.disks, vmm::DiskBus::kVmbus)),
          root_(std::make_unique<vmm::RootPartitionProcess>(
              vmm::RootPartitionServices{context.memory, context.synic, context.hypervisor, context.vm,
                                         context.config.machine.vcpus, context.config.kvp,
                                         root_disks(disks_, context.config.debug)},
              [&control = context.control](std::string reason) { control.stop_for_host_error(std::move(reason)); })) {}

    std::string_view name() const override { return "vmbus"; }

    void start() override {
        root_->start(vmm::RootPartitionProcess::default_binary());
        switch (fault_) {
        case vmm::RootPartitionFault::kNone: break;
        case vmm::RootPartitionFault::kForbiddenSyscall: root_->inject_fault(root::link::Fault::kForbiddenSyscall); break;
        case vmm::RootPartitionFault::kCrash: root_->inject_fault(root::link::Fault::kCrash); break;
        case vmm::RootPartitionFault::kHang: root_->inject_fault(root::link::Fault::kHang); break;
        }
    }

    void stop() override {
        report_ = root_->describe();
        root_.reset();
        // The next VM on these images must not find them locked by the ring the root partition left.
        if (!vmm::release_disk_images(disks_, kDiskReleaseLimit))
            spdlog::warn("vmbus: a disk image is still locked {} ms after the root partition exited", kDiskReleaseLimit.count());
    }

    std::string report() const override { return root_ ? root_->describe() : report_; }

    // Everything about channels and integration services is the root partition's to answer.
    std::optional<nlohmann::json> control(const nlohmann::json& request) override {
        if (!root_) return std::nullopt;
        auto parsed = ask_root(request, kControlTimeout);
        // "unknown command" from the root: let other devices try.
        if (!parsed.value("ok", false) && parsed.value("error", "").rfind("unknown command", 0) == 0) return std::nullopt;
        return parsed;
    }

    // The guest's heartbeat as the root partition last reported it (no round trip).
    void add_status(nlohmann::json& status) const override {
        if (!root_) return;
        const vmm::HeartbeatStatus beat = root_->heartbeat();
        nlohmann::json heartbeat = {{"state", !beat.seen ? "no answer yet" : beat.lost ? "lost" : "beating"},
                                    {"sequence", beat.sequence},
                                    {"beats", beat.beats}};
        if (beat.seen) {
            heartbeat["application_state"] = application_state_name(beat.application_state);
            heartbeat["age_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - beat.last_beat)
                                      .count();
        }
        status["heartbeat"] = std::move(heartbeat);
    }

    // The shutdown integration service carries the VMM's deadline; the guest's answer says
    // whether it accepted.
    bool request_guest_shutdown() override {
        if (!root_) return false;
        const nlohmann::json answer =
            ask_root({{"command", "shutdown"}, {"timeout_ms", shutdown_timeout_ms_}}, kShutdownAnswerTimeout);
        if (answer.value("ok", false)) return true;
        spdlog::info("the guest was not asked to shut down in order: {}", answer.value("error", "no answer"));
        return false;
    }

private:
    // Time for the guest to answer through its VSC (the root's own limit per request is 1.5 s, and
    // `kvp get` may ask three pools).
    static constexpr std::chrono::milliseconds kControlTimeout{5000};
    static constexpr std::chrono::milliseconds kDiskReleaseLimit{2000};
    static constexpr std::chrono::milliseconds kShutdownAnswerTimeout{3000};

    nlohmann::json ask_root(const nlohmann::json& request, std::chrono::milliseconds timeout) const {
        const std::string text = request.dump();
        if (text.size() > root::link::kControlTextMax)
            return {{"ok", false}, {"error", fmt::format("request too long ({} bytes; at most {})", text.size(),
                                                         root::link::kControlTextMax)}};
        auto answer = root_->control(text, timeout);
        if (!answer) return {{"ok", false}, {"error", "the root partition did not answer"}};
        nlohmann::json parsed = nlohmann::json::parse(*answer, nullptr, /*allow_exceptions=*/false);
        if (parsed.is_discarded() || !parsed.is_object()) return {{"ok", false}, {"error", "bad answer"}};
        return parsed;
    }

    vmm::RootPartitionFault fault_;
    uint32_t shutdown_timeout_ms_;
    std::vector<vmm::DiskImage> disks_;  // open and locked for the VM's lifetime
    std::unique_ptr<vmm::RootPartitionProcess> root_;
    std::string report_;  // kept from stop(), when the process is gone
};

}  // namespace

extern const DeviceType kVmbusDevice{
    "vmbus", [](const vmm::VmConfig& config) { return config.vmbus.enabled; },
    [](DeviceContext& context) -> std::unique_ptr<Device> { return std::make_unique<Vmbus>(context); }};

}  // namespace hvkvm::devices
