// A child partition's hypervisor-side state, the services its devices are built on: the KVM VM
// (with the in-kernel LAPIC/IOAPIC), guest RAM laid out from the config, the interrupt
// controller, the hypervisor interface (synthetic MSRs, hypercalls, connections, doorbells) and
// the I/O bus. No devices and no vCPUs: those are the Machine's.
#pragma once

#include <memory>

#include "config/config.h"
#include "exits/io_bus.h"
#include "hypercalls/hypervisor.h"
#include "interrupts/interrupt_controller.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"
#include "stats/kvm_stats.h"
#include "synic/synic.h"

namespace hvkvm::vmm {

class BootTimeline;

// Guest RAM per the config: one region per virtual NUMA node, or one node with all of it.
MemoryLayout memory_layout_for(const VmConfig& config);

class Partition {
public:
    Partition(const VmConfig& config, BootTimeline& timeline);
    Partition(const Partition&) = delete;
    Partition& operator=(const Partition&) = delete;

    const Kvm& kvm() const { return kvm_; }
    Vm& vm() { return vm_; }
    GuestMemory& memory() { return memory_; }
    const GuestMemory& memory() const { return memory_; }
    InterruptController& interrupts() { return *interrupts_; }
    Hypervisor& hypervisor() { return *hypervisor_; }
    Synic& synic() { return *synic_; }
    IoBus& bus() { return bus_; }
    const IoBus& bus() const { return bus_; }
    std::vector<KvmStat> vm_counters() const { return vm_stats_.read_counters(); }

private:
    void route_hypervisor_exits();

    Kvm kvm_;
    Vm vm_;
    GuestMemory memory_;
    KvmStats vm_stats_;
    std::unique_ptr<InterruptController> interrupts_;
    std::unique_ptr<Synic> synic_;
    std::unique_ptr<Hypervisor> hypervisor_;
    IoBus bus_;
};

}  // namespace hvkvm::vmm
