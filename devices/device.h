// The device model. A device is built by its DeviceType from the config and the partition's
// services (DeviceContext), registers its I/O ranges, interrupt lines and hypervisor connections
// while it is built, and then lives through start -> (reset ->)* stop -> destruction:
//   start()  before any vCPU runs: start worker threads, accept work;
//   reset()  back to the power-on state (a guest reboot); workers keep running;
//   stop()   every vCPU has stopped: finish or drop queued work, accept no more;
//   ~Device  joins the device's worker threads (and unregisters nothing: the bus and the
//            interrupt controller are torn down after every device).
// Register handlers (PIO/MMIO) run on vCPU threads; anything slow (host I/O, console writes that
// may block, waiting) belongs on the device's own worker thread, never on a vCPU thread.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "console/byte_sink.h"

namespace hvkvm::vmm {
struct VmConfig;
class IoBus;
class GuestMemory;
class InterruptController;
class Hypervisor;
class Synic;
class Vm;
struct DiskImage;
}  // namespace hvkvm::vmm

namespace hvkvm::devices {

// What the guest asks of the VMM itself through the debug device (abi/boot.h's debug ports),
// implemented by the machine.
class PartitionControl {
public:
    virtual ~PartitionControl() = default;
    virtual void on_guest_exit(uint32_t exit_code) = 0;    // abi::GuestExitCode (unchecked)
    virtual void on_boot_milestone(uint32_t phase) = 0;    // abi::BootPhase (unchecked)
    virtual void on_start_vcpu(uint32_t request_gpa) = 0;  // abi::VcpuStartRequest (unchecked)
    virtual void on_stats_window(uint32_t command) = 0;    // abi::StatsWindowCommand (unchecked)
    // A device's backend failed (e.g. the root-partition process died): stop the VM, exit 1.
    virtual void stop_for_host_error(std::string reason) = 0;
};

// The partition's services, handed to every device factory.
struct DeviceContext {
    const vmm::VmConfig& config;
    vmm::IoBus& bus;
    vmm::GuestMemory& memory;
    vmm::InterruptController& interrupts;
    vmm::Hypervisor& hypervisor;  // message and event connections
    vmm::Synic& synic;            // host->guest messages and event flags
    vmm::Vm& vm;                  // ioeventfd doorbells
    std::vector<vmm::DiskImage>& disks;  // the config's disks, open and locked; a device moves out those on its bus
    ByteSink& console;            // the VMM's console output (never blocks)
    PartitionControl& control;
};

class Device {
public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    virtual void start() {}
    virtual void reset() {}
    virtual void stop() {}
    // One line for the end-of-run report ("" for nothing to say).
    virtual std::string report() const { return {}; }
    // A management request (`vmm ctl`, JSON {"command": ...}) this device answers, or nullopt.
    virtual std::optional<nlohmann::json> control(const nlohmann::json&) { return std::nullopt; }
    // Fields this device adds to `vmm ctl ... status` (e.g. the guest's heartbeat). Must not wait.
    virtual void add_status(nlohmann::json&) const {}
    // Asked when the VMM is told to stop (SIGTERM, `vmm ctl ... shutdown`): true if the device
    // asked the guest to shut down in order (e.g. over the shutdown integration service).
    virtual bool request_guest_shutdown() { return false; }
};

// One kind of device: whether a config wants it, and how to build it. Every type is listed once
// in catalog.cpp.
struct DeviceType {
    const char* name;
    bool (*wanted)(const vmm::VmConfig& config);
    std::unique_ptr<Device> (*create)(DeviceContext& context);
};

inline bool always_present(const vmm::VmConfig&) { return true; }

// Little-endian access to the 1/2/4/8-byte data of an exit.
inline uint64_t load_le(std::span<const uint8_t> data) {
    uint64_t value = 0;
    for (size_t i = data.size(); i-- > 0;) value = (value << 8) | data[i];
    return value;
}

inline void store_le(std::span<uint8_t> data, uint64_t value) {
    for (auto& byte : data) byte = static_cast<uint8_t>(value), value >>= 8;
}

}  // namespace hvkvm::devices
