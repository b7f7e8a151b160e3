#include "machine/partition.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "hvkvm/abi/hypercall.h"
#include "kvm/kvm_error.h"
#include "machine/numa_placement.h"
#include "stats/boot_timeline.h"

namespace hvkvm::vmm {
namespace {

constexpr uint64_t kVmxTssAddress = 0xfffbd000;  // needed by VMX hosts, unused elsewhere

void require(const Kvm& kvm, long capability, const char* what) {
    if (!kvm.check_extension(capability)) throw HostError(ENOTSUP, fmt::format("KVM lacks {}", what));
}

// What this VMM needs from KVM, checked up front so that a missing feature is one clear error.
void require_kvm_features(const Kvm& kvm) {
    require(kvm, KVM_CAP_IRQCHIP, "an in-kernel irqchip (KVM_CAP_IRQCHIP)");
    require(kvm, KVM_CAP_IRQFD, "irqfds (KVM_CAP_IRQFD)");
    require(kvm, KVM_CAP_IRQFD_RESAMPLE, "level-triggered irqfds (KVM_CAP_IRQFD_RESAMPLE)");
    require(kvm, KVM_CAP_IRQ_ROUTING, "GSI routing (KVM_CAP_IRQ_ROUTING)");
    require(kvm, KVM_CAP_X86_USER_SPACE_MSR, "user-space MSR exits (KVM_CAP_X86_USER_SPACE_MSR)");
    require(kvm, KVM_CAP_X86_MSR_FILTER, "MSR filters (KVM_CAP_X86_MSR_FILTER)");
    require(kvm, KVM_CAP_IOEVENTFD, "ioeventfds (KVM_CAP_IOEVENTFD)");
    if (!(kvm.check_extension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS))
        throw HostError(ENOTSUP, "KVM lacks synced registers (KVM_CAP_SYNC_REGS)");
}

Vm create_vm_with_irqchip(const Kvm& kvm) {
    require_kvm_features(kvm);
    Vm vm = kvm.create_vm();
    if (::ioctl(vm.fd(), KVM_SET_TSS_ADDR, kVmxTssAddress) < 0)
        spdlog::debug("KVM_SET_TSS_ADDR: {} (not needed on this host)", std::strerror(errno));
    vm.create_irqchip();
    return vm;
}

}  // namespace

MemoryLayout memory_layout_for(const VmConfig& config) {
    if (!config.numa.enabled()) return MemoryLayout::for_ram(config.machine.memory_mib << 20);
    std::vector<uint64_t> node_bytes;
    for (const NumaNodeConfig& node : config.numa.nodes) node_bytes.push_back(node.memory_mib << 20);
    return MemoryLayout::for_nodes(node_bytes);
}

Partition::Partition(const VmConfig& config, BootTimeline& timeline)
    : kvm_(Kvm::open()), vm_(create_vm_with_irqchip(kvm_)),
      memory_(GuestMemory::create(memory_layout_for(config))), vm_stats_(vm_.stats_fd()) {
    bind_guest_memory(memory_, config.numa);  // before KVM or the loader touches a page
    timeline.mark_vmm_step("VM and guest RAM created");
    vm_.map_guest_memory(memory_);
    interrupts_ = std::make_unique<InterruptController>(vm_);
    synic_ = std::make_unique<Synic>(config.machine.vcpus, memory_, *interrupts_);
    hypervisor_ = std::make_unique<Hypervisor>(HypervisorConfig{config.machine.vcpus}, memory_, synic_.get());
    route_hypervisor_exits();
}

// Synthetic MSRs to user space; the loopback event connection and its exit-free doorbell
// (hvkvm/abi/hypercall.h). Per-vCPU kick doorbells are added with the vCPUs.
void Partition::route_hypervisor_exits() {
    namespace hv = abi::hv;
    vm_.enable_cap(KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN);
    vm_.send_msrs_to_user_space(hv::kSyntheticMsrFirst, hv::kSyntheticMsrLast - hv::kSyntheticMsrFirst + 1);
    const int loopback = hypervisor_->add_event_connection(hv::kLoopbackEventConnectionId);
    vm_.add_pio_doorbell(hv::kSignalEventPort, hv::kLoopbackEventConnectionId, loopback);
}

}  // namespace hvkvm::vmm
