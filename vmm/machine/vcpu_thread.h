// One host thread per vCPU: waits until the vCPU is started, then runs KVM_RUN and dispatches
// exits until the VM stops. Everything a vCPU thread touches is either its own (counters, kvm_run)
// or designed for concurrent use (IoBus after setup, RunControl, BootTimeline).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvm/kvm.h"
#include "machine/start_gate.h"
#include "stats/exit_counters.h"
#include "stats/kvm_stats.h"

namespace hvkvm::vmm {

class IoBus;
class RunControl;
class BootTimeline;
class Hypervisor;
class GuestMemory;
struct GuestTriggeredLogs;
struct PioExit;

struct VcpuServices {
    const IoBus& bus;
    RunControl& control;
    BootTimeline& timeline;
    Hypervisor& hypervisor;
    const GuestMemory& memory;
    GuestTriggeredLogs& logs;
};

class VcpuThread {
public:
    // `host_node`: pin the thread to that host NUMA node's CPUs (numa.pin_vcpus), else leave it
    // to the host scheduler. `root_cpus` (vmbus.root_cpus): keep the thread off the root
    // partition's CPUs, unless they are all it could run on.
    VcpuThread(Vcpu vcpu, VcpuServices services, std::optional<uint32_t> host_node = std::nullopt,
               std::vector<uint32_t> root_cpus = {});
    VcpuThread(const VcpuThread&) = delete;
    VcpuThread& operator=(const VcpuThread&) = delete;
    ~VcpuThread();

    Vcpu& vcpu() { return vcpu_; }

    void launch();   // creates (and pins) the thread; it waits until release()
    // Claims the right to start this vCPU; false if it was claimed before (started already).
    bool claim_start() { return !start_claimed_.exchange(true); }
    bool started() const { return start_claimed_.load(); }
    void release();  // the vCPU's state is set: enter the guest
    void kick();     // leave KVM_RUN (or the start gate) promptly; used to stop the VM
    void join();

    // Valid after join().
    const ExitCounters& exit_counters() const { return exit_counters_; }
    std::vector<KvmStat> kvm_counters() const { return kvm_stats_.read_counters(); }
    std::optional<uint32_t> host_node() const { return host_node_; }
    // The host CPUs the thread may run on, read back from the kernel after launch().
    const std::vector<uint32_t>& host_cpus() const { return host_cpus_; }

private:
    void thread_main();
    void run_loop();
    void handle_exit();
    void handle_io();
    bool is_hypercall(const PioExit& exit);
    void handle_hypercall_port(const PioExit& exit);
    void handle_mmio();
    void handle_msr(bool write);
    void stop_for_guest_crash(const std::string& what);

    Vcpu vcpu_;
    VcpuServices services_;
    KvmStats kvm_stats_;
    ExitCounters exit_counters_;
    std::thread thread_;
    StartGate gate_;
    std::atomic<bool> start_claimed_{false};
    std::optional<uint32_t> host_node_;
    std::vector<uint32_t> host_cpus_;
    std::vector<uint32_t> root_cpus_;
};

}  // namespace hvkvm::vmm
