// RAII wrappers for the three KVM file-descriptor objects: the system (/dev/kvm), a VM and a
// vCPU. Each ioctl failure throws HostError naming the ioctl, so callers read as straight-line
// setup code.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class Vm;
class Vcpu;
class GuestMemory;

class Kvm {
public:
    static Kvm open(const std::string& path = "/dev/kvm");

    int check_extension(long capability) const;
    size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
    std::vector<kvm_cpuid_entry2> supported_cpuid() const;
    Vm create_vm() const;
    int fd() const { return fd_.get(); }

private:
    Kvm(UniqueFd fd, size_t vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}
    UniqueFd fd_;
    size_t vcpu_mmap_size_ = 0;
};

class Vm {
public:
    Vm(UniqueFd fd, size_t vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

    void create_irqchip();
    void set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host_address);
    // Registers every region of guest RAM as a KVM memory slot (slot i = region i).
    void map_guest_memory(const GuestMemory& memory);
    void enable_cap(uint32_t capability, uint64_t arg0 = 0, uint64_t arg1 = 0);
    int check_extension(long capability) const;
    Vcpu create_vcpu(uint32_t index) const;
    UniqueFd stats_fd() const;
    // MSRs in [first, first + count) exit to user space (KVM_X86_SET_MSR_FILTER denies them to
    // the in-kernel handlers); everything else stays with KVM.
    void send_msrs_to_user_space(uint32_t first, uint32_t count);
    // A 4-byte PIO write of `value` to `port` signals `event_fd` in the host kernel, no exit.
    void add_pio_doorbell(uint16_t port, uint32_t value, int event_fd);
    // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING).
    void set_gsi_routing(std::span<const kvm_irq_routing_entry> routes);
    // Writing `event_fd` raises `gsi` in the host kernel (KVM_IRQFD). With a `resample_fd` the
    // GSI is level-triggered: it stays asserted until the guest's EOI, which signals resample_fd.
    void assign_irqfd(int event_fd, uint32_t gsi, int resample_fd = -1);
    void deassign_irqfd(int event_fd, uint32_t gsi) noexcept;
    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
    size_t vcpu_mmap_size_ = 0;
};

class Vcpu {
public:
    Vcpu(UniqueFd fd, Mapping run, uint32_t index)
        : fd_(std::move(fd)), run_mapping_(std::move(run)), index_(index) {}

    uint32_t index() const { return index_; }
    kvm_run& run_state() const { return *static_cast<kvm_run*>(run_mapping_.get()); }
    // The whole run mapping: kvm_run and the data areas its exits point into.
    std::span<uint8_t> run_area() const { return {static_cast<uint8_t*>(run_mapping_.get()), run_mapping_.size()}; }

    // Enters the guest. Returns false if KVM_RUN was interrupted by a signal (EINTR), which is how
    // another thread kicks this vCPU out of the guest; throws on any other failure.
    bool run();

    kvm_regs regs() const;
    void set_regs(const kvm_regs& regs);
    kvm_sregs sregs() const;
    void set_sregs(const kvm_sregs& sregs);
    void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
    void set_mp_state(uint32_t state);
    uint64_t tsc_khz() const;  // 0 if the host cannot tell
    // From now on every exit leaves the general-purpose registers in run_state().s.regs.regs;
    // write them back with mark_registers_dirty() (KVM_CAP_SYNC_REGS: no ioctl per exit).
    void sync_registers_on_exit();
    kvm_regs& synced_registers() const { return run_state().s.regs.regs; }
    void mark_registers_dirty() { run_state().kvm_dirty_regs |= KVM_SYNC_X86_REGS; }
    UniqueFd stats_fd() const;
    int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
    Mapping run_mapping_;
    uint32_t index_;
};

}  // namespace hvkvm::vmm
