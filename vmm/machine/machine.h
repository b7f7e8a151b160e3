// A child partition ready to run: the partition (KVM VM, guest RAM, interrupts, hypervisor, I/O
// bus), the device list built from the config, and one thread per vCPU. Built completely in the
// constructor (nothing runs yet); run() boots vCPU 0 and returns how the run ended;
// print_report() shows the boot timeline, exit counts and device reports afterwards.
#pragma once

#include <memory>
#include <vector>

#include "boot/elf_loader.h"
#include "config/config.h"
#include "console/console_output.h"
#include "device.h"
#include "device_list.h"
#include "host/host_platform.h"
#include "machine/partition.h"
#include "machine/run_control.h"
#include "machine/vcpu_thread.h"
#include "stats/boot_timeline.h"

namespace hvkvm::vmm {

class StopSignals;

struct MachineSpec {
    const VmConfig& config;
    const KernelImage& kernel;
    GuestCpuMode cpu_mode;
    HostPlatform host;
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

    abi::VcpuStartStatus start_vcpu(const abi::VcpuStartRequest& request);
    void create_vcpus(const MachineSpec& spec);
    void prepare_boot(const MachineSpec& spec);
    RunOutcome describe_guest_crash() const;
    abi::GuestReport read_guest_report() const;
    std::vector<std::string> describe_numa(const abi::GuestReport& guest) const;
    void wait_for_stop(const StopSignals& signals);

    const VmConfig& config_;
    BootTimeline& timeline_;
    RunControl control_;
    Partition partition_;
    devices::DeviceContext device_context_;
    devices::DeviceList devices_;
    uint64_t tsc_khz_ = 0;
    std::vector<std::unique_ptr<VcpuThread>> vcpus_;
};

}  // namespace hvkvm::vmm
