// A child partition ready to run: the partition (KVM VM, guest RAM, interrupts, hypervisor, I/O
// bus), the device list built from the config, and one thread per vCPU. Built completely in the
// constructor (nothing runs yet); run() boots vCPU 0 and returns how the run ended;
// print_report() shows the boot timeline, exit counts and device reports afterwards.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "boot/elf_loader.h"
#include "config/config.h"
#include "console/console_output.h"
#include "device.h"
#include "device_list.h"
#include "host/host_platform.h"
#include "control/control_server.h"
#include "machine/partition.h"
#include "log/guest_triggered_logs.h"
#include "machine/run_control.h"
#include "machine/vcpu_thread.h"
#include "stats/boot_timeline.h"
#include "stats/measurement_window.h"
#include "storage/disk_image.h"

namespace hvkvm::vmm {

class StopSignals;

struct MachineSpec {
    const VmConfig& config;
    const KernelImage& kernel;
    GuestCpuMode cpu_mode;
    HostPlatform host;
    std::vector<DiskImage>& disks;  // opened and locked; devices take the ones on their bus
};

class Machine final : private devices::PartitionControl {
public:
    Machine(const MachineSpec& spec, ConsoleOutput& console, BootTimeline& timeline);
    ~Machine() override;

    // Runs until the guest exits, crashes, the VMM fails, or a stop signal arrives.
    RunOutcome run(const StopSignals& signals);

    // After run(): once, since it drains the hypervisor's doorbell counters.
    void print_report();

private:
    // devices::PartitionControl: the guest's requests through the debug device.
    void on_guest_exit(uint32_t exit_code) override;
    void on_boot_milestone(uint32_t phase) override;
    void on_start_vcpu(uint32_t request_gpa) override;
    void on_stats_window(uint32_t command) override;
    void stop_for_host_error(std::string reason) override;

    abi::VcpuStartStatus start_vcpu(const abi::VcpuStartRequest& request);
    void create_vcpus(const MachineSpec& spec);
    void prepare_boot(const MachineSpec& spec);
    std::vector<std::string> describe_numa(const abi::GuestReport& guest) const;
    std::vector<KvmStat> vcpu_counters() const;  // KVM's, summed over the vCPUs
    void wait_for_stop(const StopSignals& signals);
    void on_stop_signal(int signal);
    // Asks the guest to shut down in order (through a device: the shutdown integration service);
    // false if nothing could ask it. `signal` is the status to stop with at the deadline.
    bool begin_orderly_shutdown(int signal);
    nlohmann::json control(const nlohmann::json& request);
    nlohmann::json status() const;

    const VmConfig& config_;
    BootTimeline& timeline_;
    RunControl control_;
    GuestTriggeredLogs logs_;  // rate limits for every log line a guest can trigger
    Partition partition_;
    devices::DeviceContext device_context_;
    devices::DeviceList devices_;
    uint64_t tsc_khz_ = 0;
    uint32_t shutdown_timeout_ms_ = 0;
    std::vector<std::unique_ptr<VcpuThread>> vcpus_;
    MeasurementWindow measurement_window_;  // opened and closed by the guest (kStatsWindowPort)
    const BootTimeline::Clock::time_point started_ = BootTimeline::Clock::now();

    // An orderly shutdown in progress: the deadline, and the signal whose status the VMM exits with
    // if the guest ignores it (SIGTERM for `vmm ctl ... shutdown` too).
    // Set by the main thread or the control thread; the main thread watches shutdown_event_.
    std::mutex shutdown_mutex_;
    std::optional<BootTimeline::Clock::time_point> shutdown_deadline_;
    int shutdown_signal_ = 0;
    UniqueFd shutdown_event_;
    std::unique_ptr<ControlServer> control_server_;  // last: stops before what it uses
};

}  // namespace hvkvm::vmm
