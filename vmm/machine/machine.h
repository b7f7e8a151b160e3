// A child partition: guest RAM, the KVM VM with its in-kernel irqchip, the emulated devices on
// the I/O bus, and one thread per vCPU. Built completely in the constructor (nothing runs yet);
// run() boots vCPU 0 and returns how the run ended; print_report() shows the boot timeline and
// exit counts afterwards.
#pragma once

#include <memory>
#include <vector>

#include "boot/elf_loader.h"
#include "config/config.h"
#include "console/console_output.h"
#include "emulated/debug_device.h"
#include "emulated/uart16550.h"
#include "exits/io_bus.h"
#include "host/host_platform.h"
#include "hypercalls/hypervisor.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"
#include "log/guest_triggered_logs.h"
#include "machine/run_control.h"
#include "machine/vcpu_thread.h"
#include "stats/boot_timeline.h"
#include "stats/kvm_stats.h"

namespace hvkvm::vmm {

class StopSignals;

struct MachineSpec {
    const VmConfig& config;
    const KernelImage& kernel;
    GuestCpuMode cpu_mode;
    HostPlatform host;
};

class Machine final : private devices::DebugDevice::Listener {
public:
    Machine(const MachineSpec& spec, ConsoleOutput& console, BootTimeline& timeline);
    ~Machine() override;

    // Runs until the guest exits, crashes, the VMM fails, or a stop signal arrives.
    RunOutcome run(const StopSignals& signals);

    // After run(): once, since it drains the hypervisor's doorbell counters.
    void print_report();

private:
    void on_guest_exit(uint32_t exit_code) override;
    void on_boot_milestone(uint32_t phase) override;
    void on_start_vcpu(uint32_t request_gpa) override;
    abi::VcpuStartStatus start_vcpu(const abi::VcpuStartRequest& request);

    void create_vcpus(const MachineSpec& spec);
    void enable_hypervisor_interface(ConsoleOutput& console);
    void wait_for_stop(const StopSignals& signals);

    Kvm kvm_;
    Vm vm_;
    GuestMemory memory_;
    uint32_t boot_flags_ = 0;
    uint64_t tsc_khz_ = 0;
    BootTimeline& timeline_;
    RunControl control_;
    GuestTriggeredLogs logs_;
    IoBus bus_;
    std::shared_ptr<devices::Uart16550> uart_;
    std::shared_ptr<devices::DebugDevice> debug_device_;
    std::unique_ptr<KvmStats> vm_stats_;
    std::unique_ptr<Hypervisor> hypervisor_;
    std::vector<std::unique_ptr<VcpuThread>> vcpus_;
};

}  // namespace hvkvm::vmm
