#include "machine/machine.h"

#include <poll.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "boot/boot_setup.h"
#include "cpu/cpuid.h"
#include "hvkvm/abi/hypercall.h"
#include "kvm/kvm_error.h"
#include "machine/stop_signals.h"
#include "stats/guest_report.h"
#include "stats/run_report.h"

namespace hvkvm::vmm {
namespace {

constexpr uint64_t kVmxTssAddress = 0xfffbd000;  // needed by VMX hosts, unused elsewhere

// What this VMM needs from KVM, checked up front so that a missing feature is one clear error.
void require(const Kvm& kvm, long capability, const char* what) {
    if (!kvm.check_extension(capability)) throw HostError(ENOTSUP, fmt::format("KVM lacks {}", what));
}

}  // namespace

Machine::Machine(const MachineSpec& spec, ConsoleOutput& console, BootTimeline& timeline)
    : kvm_(Kvm::open()), vm_(kvm_.create_vm()),
      memory_(GuestMemory::create(spec.config.machine.memory_mib << 20)), timeline_(timeline) {
    require(kvm_, KVM_CAP_IRQCHIP, "an in-kernel irqchip (KVM_CAP_IRQCHIP)");
    require(kvm_, KVM_CAP_X86_USER_SPACE_MSR, "user-space MSR exits (KVM_CAP_X86_USER_SPACE_MSR)");
    require(kvm_, KVM_CAP_X86_MSR_FILTER, "MSR filters (KVM_CAP_X86_MSR_FILTER)");
    require(kvm_, KVM_CAP_IOEVENTFD, "ioeventfds (KVM_CAP_IOEVENTFD)");
    if (!(kvm_.check_extension(KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS))
        throw HostError(ENOTSUP, "KVM lacks synced registers (KVM_CAP_SYNC_REGS)");
    if (::ioctl(vm_.fd(), KVM_SET_TSS_ADDR, kVmxTssAddress) < 0)
        spdlog::debug("KVM_SET_TSS_ADDR: {} (not needed on this host)", std::strerror(errno));
    vm_.create_irqchip();
    timeline_.mark_vmm_step("VM and guest RAM created");
    memory_.register_with(vm_);
    vm_stats_ = std::make_unique<KvmStats>(vm_.stats_fd());

    load_kernel(spec.kernel, memory_);
    write_boot_gdt(memory_);
    const BootLayout layout = build_boot_page_tables(memory_);
    timeline_.mark_vmm_step("kernel loaded, page tables built");

    uart_ = std::make_shared<devices::Uart16550>(console);
    debug_device_ = std::make_shared<devices::DebugDevice>(static_cast<devices::DebugDevice::Listener&>(*this));
    bus_.register_pio(devices::Uart16550::kCom1Base, devices::Uart16550::kRegisterCount, uart_);
    bus_.register_pio(abi::kDebugExitPort, devices::DebugDevice::kPortCount, debug_device_);

    boot_flags_ = (spec.host.pvm ? uint32_t{abi::kBootFlagPvmHost} : 0u) |
                  (spec.cpu_mode == GuestCpuMode::kPvm ? uint32_t{abi::kBootFlagUsePvm} : 0u);
    hypervisor_ = std::make_unique<Hypervisor>(HypervisorConfig{spec.config.machine.vcpus}, memory_);
    enable_hypervisor_interface(console);
    create_vcpus(spec);
    timeline_.mark_vmm_step("vCPUs created");

    // The BSP starts at the kernel entry; APs are started later, on the guest's request.
    vcpus_.front()->claim_start();
    Vcpu& bsp = vcpus_.front()->vcpu();
    bsp.set_sregs(long_mode_sregs(bsp.sregs(), layout.page_tables_gpa));
    bsp.set_regs(entry_regs(spec.kernel.entry, 0));
    tsc_khz_ = bsp.tsc_khz();
    hypervisor_->set_tsc_khz(tsc_khz_);

    write_boot_info(memory_, spec.kernel, layout,
                    BootParameters{spec.config.machine.vcpus, boot_flags_, tsc_khz_, spec.config.kernel.cmdline});
}

Machine::~Machine() {
    for (auto& vcpu : vcpus_) vcpu->kick();
}

// Synthetic MSRs to user space, the guest console and loopback connections, and the ioeventfd
// doorbells the hypercall page uses (hvkvm/abi/hypercall.h).
void Machine::enable_hypervisor_interface(ConsoleOutput& console) {
    namespace hv = abi::hv;
    vm_.enable_cap(KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN);
    vm_.send_msrs_to_user_space(hv::kSyntheticMsrFirst, hv::kSyntheticMsrLast - hv::kSyntheticMsrFirst + 1);

    hypervisor_->add_message_connection(
        hv::kConsoleConnectionId, [this, &console](uint32_t type, std::span<const uint8_t> text) {
            if (type != hv::kMessageTypeConsoleText) return hv::Status::kInvalidParameter;
            uart_->flush();  // keep the console in order with what the UART already has
            console.write(text);
            return hv::Status::kSuccess;
        });
    const int loopback = hypervisor_->add_event_connection(hv::kLoopbackEventConnectionId);
    vm_.add_pio_doorbell(hv::kSignalEventPort, hv::kLoopbackEventConnectionId, loopback);
}

void Machine::create_vcpus(const MachineSpec& spec) {
    const auto supported = kvm_.supported_cpuid();
    const uint32_t count = spec.config.machine.vcpus;
    const EnlightenmentsConfig& enlightenments = spec.config.enlightenments;
    const long host_cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    const HypervisorLeaves leaves{enlightenments.spinlock ? enlightenments.spin_count : abi::hv::kSpinCountNeverNotify,
                                  abi::kMaxVcpus, host_cpus > 0 ? static_cast<uint32_t>(host_cpus) : 0};
    for (uint32_t index = 0; index < count; ++index) {
        Vcpu vcpu = vm_.create_vcpu(index);
        vcpu.set_cpuid(vcpu_cpuid(supported, index, count, leaves));
        vcpu.sync_registers_on_exit();
        vm_.add_pio_doorbell(abi::hv::kKickVpPort, index, hypervisor_->kick_eventfd(index));
        vcpus_.push_back(std::make_unique<VcpuThread>(
            std::move(vcpu), VcpuServices{bus_, control_, timeline_, *hypervisor_, memory_, logs_}));
    }
}

RunOutcome Machine::run(const StopSignals& signals) {
    for (auto& vcpu : vcpus_) vcpu->launch();
    vcpus_.front()->release();
    wait_for_stop(signals);
    timeline_.mark_guest_stop();
    for (auto& vcpu : vcpus_) vcpu->kick();
    for (auto& vcpu : vcpus_) vcpu->join();
    uart_->flush();
    logs_.report_suppressed();
    return control_.outcome();
}

void Machine::wait_for_stop(const StopSignals& signals) {
    pollfd fds[2] = {{control_.stop_event_fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    while (!control_.stopping()) {
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) throw_errno("poll for VM stop");
        if (fds[1].revents & POLLIN) {
            if (auto signal = signals.read_signal()) {
                spdlog::info("SIG{} received: stopping the VM", ::sigabbrev_np(*signal));
                control_.request_stop({static_cast<int>(ExitStatus::kSignalBase) + *signal,
                                       fmt::format("stopped by SIG{}", ::sigabbrev_np(*signal))});
            }
        }
    }
}

void Machine::on_guest_exit(uint32_t exit_code) {
    timeline_.mark_guest_stop();
    switch (static_cast<abi::GuestExitCode>(exit_code)) {
    case abi::GuestExitCode::kSuccess:
        control_.request_stop(RunOutcome::with(ExitStatus::kGuestSuccess, "guest reported success"));
        return;
    case abi::GuestExitCode::kFailure:
        control_.request_stop(RunOutcome::with(ExitStatus::kGuestFailure, "guest reported failure"));
        return;
    case abi::GuestExitCode::kCrash:
        control_.request_stop(RunOutcome::with(
            ExitStatus::kGuestCrash,
            describe_guest_crash(read_guest_report(memory_).crash, static_cast<uint32_t>(vcpus_.size()))));
        return;
    }
    control_.request_stop(RunOutcome::with(
        ExitStatus::kGuestFailure, fmt::format("guest wrote unknown exit code {:#x} to the debug-exit port", exit_code)));
}

void Machine::on_boot_milestone(uint32_t phase) {
    if (phase < abi::kBootPhaseCount) timeline_.mark_milestone(static_cast<abi::BootPhase>(phase));
    else logs_.unknown_milestones.log("guest marked unknown boot phase {}", phase);
}

void Machine::on_start_vcpu(uint32_t request_gpa) {
    constexpr size_t kStatusOffset = offsetof(abi::VcpuStartRequest, status);
    auto bytes = memory_.translate(request_gpa, sizeof(abi::VcpuStartRequest));
    if (!bytes || request_gpa % 8 != 0) {
        logs_.unreachable_start_requests.log(
            "guest asked to start a vCPU with a request at {:#x}, which is not aligned guest RAM", request_gpa);
        return;  // nowhere to write a status
    }
    abi::VcpuStartRequest request;
    std::memcpy(&request, bytes->data(), sizeof request);  // copy once, then validate the copy
    const abi::VcpuStartStatus status = start_vcpu(request);
    std::memcpy(bytes->data() + kStatusOffset, &status, sizeof status);
    if (status != abi::VcpuStartStatus::kStarted)
        logs_.refused_start_requests.log("start of vCPU {} refused (status {})", request.vcpu_index,
                                         static_cast<uint32_t>(status));
}

abi::VcpuStartStatus Machine::start_vcpu(const abi::VcpuStartRequest& request) {
    const abi::VcpuStartStatus verdict =
        check_start_request(request, static_cast<uint32_t>(vcpus_.size()), memory_);
    if (verdict != abi::VcpuStartStatus::kStarted) return verdict;
    VcpuThread& thread = *vcpus_[request.vcpu_index];
    if (!thread.claim_start()) return abi::VcpuStartStatus::kAlreadyStarted;
    // The target thread waits at its start gate, outside KVM_RUN, so its state may be set here.
    Vcpu& vcpu = thread.vcpu();
    vcpu.set_sregs(long_mode_sregs(vcpu.sregs(), request.cr3));
    vcpu.set_regs(start_regs(request));
    vcpu.set_mp_state(KVM_MP_STATE_RUNNABLE);
    thread.release();
    return abi::VcpuStartStatus::kStarted;
}

void Machine::print_report() {
    const abi::GuestReport guest = read_guest_report(memory_);
    std::array<uint64_t, abi::kBootPhaseCount> phase_tsc{};
    std::copy(std::begin(guest.phase_tsc), std::end(guest.phase_tsc), phase_tsc.begin());

    RunReport report;
    report.timeline = timeline_.entries(phase_tsc, tsc_khz_);
    report.guest_main_ms = timeline_.milestone_ms(abi::BootPhase::kKernelMain);
    report.guest_platform = describe_guest_platform(guest.platform);
    ExitCounters exits;
    for (const auto& vcpu : vcpus_) {
        exits.merge(vcpu->exit_counters());
        accumulate(report.kvm_vcpu_counters, vcpu->kvm_counters());
    }
    report.vmm_exit_counts = exits.counts();
    for (const auto& [name, count] : hypervisor_->final_call_counts()) report.hypercalls.emplace_back(name, count);
    report.kvm_vm_counters = vm_stats_->read_counters();
    print_run_report(report, stderr);
}

}  // namespace hvkvm::vmm
