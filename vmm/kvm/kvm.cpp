#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <fmt/format.h>

#include "kvm/guest_memory.h"
#include "kvm/kvm_error.h"
#include "kvm/kvm_uapi.h"

namespace hvkvm::vmm {
namespace {

constexpr int kExpectedApiVersion = 12;

}  // namespace

Kvm Kvm::open(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) throw_errno(fmt::format("cannot open {}", path));
    int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
    if (version != kExpectedApiVersion)
        throw HostError(ENOTSUP, fmt::format("{}: KVM API version {} (need {})", path, version,
                                             kExpectedApiVersion));
    int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0) throw_errno("KVM_GET_VCPU_MMAP_SIZE");
    return Kvm(std::move(fd), static_cast<size_t>(mmap_size));
}

int Kvm::check_extension(long capability) const {
    int result = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

std::vector<kvm_cpuid_entry2> Kvm::supported_cpuid() const {
    for (uint32_t capacity = 64; capacity <= 4096; capacity *= 2) {
        std::vector<uint8_t> buffer(sizeof(uapi::CpuidHeader) + capacity * sizeof(kvm_cpuid_entry2));
        auto* header = reinterpret_cast<uapi::CpuidHeader*>(buffer.data());
        header->nent = capacity;
        if (::ioctl(fd_.get(), uapi::kGetSupportedCpuid, buffer.data()) == 0) {
            const auto* entries = reinterpret_cast<const kvm_cpuid_entry2*>(header + 1);
            return {entries, entries + header->nent};
        }
        if (errno != E2BIG) throw_errno("KVM_GET_SUPPORTED_CPUID");
    }
    throw HostError(E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

Vm Kvm::create_vm() const {
    int fd = -1;
    // KVM_CREATE_VM can fail transiently with EINTR while the host is busy.
    do fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) throw_errno("KVM_CREATE_VM");
    return Vm(UniqueFd(fd), vcpu_mmap_size_);
}

void Vm::create_irqchip() {
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) throw_errno("KVM_CREATE_IRQCHIP");
}

void Vm::set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host_address) {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = gpa;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host_address);
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        throw_errno(fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}", slot, gpa));
}

void Vm::map_guest_memory(const GuestMemory& memory) {
    uint32_t slot = 0;
    for (const RamRegion& region : memory.regions())
        set_memory_region(slot++, region.gpa, region.size, memory.host_address(region));
}

void Vm::enable_cap(uint32_t capability, uint64_t arg0, uint64_t arg1) {
    kvm_enable_cap cap{};
    cap.cap = capability;
    cap.args[0] = arg0;
    cap.args[1] = arg1;
    if (::ioctl(fd_.get(), KVM_ENABLE_CAP, &cap) < 0)
        throw_errno(fmt::format("KVM_ENABLE_CAP {}", capability));
}

int Vm::check_extension(long capability) const {
    int result = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

Vcpu Vm::create_vcpu(uint32_t index) const {
    UniqueFd fd(::ioctl(fd_.get(), KVM_CREATE_VCPU, index));
    if (!fd.valid()) throw_errno(fmt::format("KVM_CREATE_VCPU {}", index));
    void* run = ::mmap(nullptr, vcpu_mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (run == MAP_FAILED) throw_errno(fmt::format("mmap of vCPU {} run area", index));
    return Vcpu(std::move(fd), Mapping(run, vcpu_mmap_size_), index);
}

void Vm::send_msrs_to_user_space(uint32_t first, uint32_t count) {
    std::vector<uint8_t> deny_all((count + 7) / 8, 0);  // bit clear = denied in kernel = user exit
    kvm_msr_filter filter{};
    filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
    filter.ranges[0].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
    filter.ranges[0].nmsrs = count;
    filter.ranges[0].base = first;
    filter.ranges[0].bitmap = deny_all.data();
    if (::ioctl(fd_.get(), KVM_X86_SET_MSR_FILTER, &filter) < 0) throw_errno("KVM_X86_SET_MSR_FILTER");
}

void Vm::add_pio_doorbell(uint16_t port, uint32_t value, int event_fd) {
    kvm_ioeventfd doorbell{};
    doorbell.datamatch = value;
    doorbell.addr = port;
    doorbell.len = 4;
    doorbell.fd = event_fd;
    doorbell.flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (::ioctl(fd_.get(), KVM_IOEVENTFD, &doorbell) < 0)
        throw_errno(fmt::format("KVM_IOEVENTFD on port {:#x} for value {:#x}", port, value));
}

void Vm::set_gsi_routing(std::span<const kvm_irq_routing_entry> routes) {
    std::vector<uint8_t> buffer(sizeof(uapi::IrqRoutingHeader) + routes.size() * sizeof(kvm_irq_routing_entry));
    auto* header = reinterpret_cast<uapi::IrqRoutingHeader*>(buffer.data());
    header->nr = static_cast<uint32_t>(routes.size());
    std::copy(routes.begin(), routes.end(), reinterpret_cast<kvm_irq_routing_entry*>(header + 1));
    if (::ioctl(fd_.get(), uapi::kSetGsiRouting, buffer.data()) < 0)
        throw_errno(fmt::format("KVM_SET_GSI_ROUTING with {} routes", routes.size()));
}

void Vm::assign_irqfd(int event_fd, uint32_t gsi, int resample_fd) {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(event_fd);
    irqfd.gsi = gsi;
    if (resample_fd >= 0) {
        irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
        irqfd.resamplefd = static_cast<uint32_t>(resample_fd);
    }
    if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) throw_errno(fmt::format("KVM_IRQFD for GSI {}", gsi));
}

void Vm::deassign_irqfd(int event_fd, uint32_t gsi) noexcept {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(event_fd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    ::ioctl(fd_.get(), KVM_IRQFD, &irqfd);  // only fails if it was never assigned
}

UniqueFd Vm::stats_fd() const {
    UniqueFd fd(::ioctl(fd_.get(), KVM_GET_STATS_FD, 0));
    if (!fd.valid()) throw_errno("KVM_GET_STATS_FD (VM)");
    return fd;
}

bool Vcpu::run() {
    if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
    if (errno == EINTR || errno == EAGAIN) return false;
    throw_errno(fmt::format("KVM_RUN on vCPU {}", index_));
}

kvm_regs Vcpu::regs() const {
    kvm_regs regs{};
    if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0) throw_errno("KVM_GET_REGS");
    return regs;
}

void Vcpu::set_regs(const kvm_regs& regs) {
    if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0) throw_errno("KVM_SET_REGS");
}

kvm_sregs Vcpu::sregs() const {
    kvm_sregs sregs{};
    if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0) throw_errno("KVM_GET_SREGS");
    return sregs;
}

void Vcpu::set_sregs(const kvm_sregs& sregs) {
    if (::ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0) throw_errno("KVM_SET_SREGS");
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
    std::vector<uint8_t> buffer(sizeof(uapi::CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2));
    auto* header = reinterpret_cast<uapi::CpuidHeader*>(buffer.data());
    header->nent = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), reinterpret_cast<kvm_cpuid_entry2*>(header + 1));
    if (::ioctl(fd_.get(), uapi::kSetCpuid2, buffer.data()) < 0) throw_errno("KVM_SET_CPUID2");
}

void Vcpu::set_mp_state(uint32_t state) {
    kvm_mp_state mp{state};
    if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &mp) < 0) throw_errno("KVM_SET_MP_STATE");
}

uint64_t Vcpu::tsc_khz() const {
    int khz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? static_cast<uint64_t>(khz) : 0;
}

void Vcpu::sync_registers_on_exit() { run_state().kvm_valid_regs = KVM_SYNC_X86_REGS; }

UniqueFd Vcpu::stats_fd() const {
    UniqueFd fd(::ioctl(fd_.get(), KVM_GET_STATS_FD, 0));
    if (!fd.valid()) throw_errno("KVM_GET_STATS_FD (vCPU)");
    return fd;
}

}  // namespace hvkvm::vmm
