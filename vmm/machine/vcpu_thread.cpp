#include "machine/vcpu_thread.h"

#include <pthread.h>
#include <signal.h>

#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "exits/guest_code.h"
#include "device.h"
#include "exits/io_bus.h"
#include "exits/pio_exit.h"
#include "hvkvm/abi/hypercall.h"
#include "hvkvm/numa/host/host_numa.h"
#include "hypercalls/hypervisor.h"
#include "hypercalls/page_exit.h"
#include "kvm/kvm_error.h"
#include "log/guest_triggered_logs.h"
#include "machine/run_control.h"
#include "stats/boot_timeline.h"

namespace hvkvm::vmm {
namespace {

// The signal used to force a vCPU thread out of KVM_RUN. Its handler does nothing: the point is
// that KVM_RUN returns EINTR (and kvm_run.immediate_exit covers the window before KVM_RUN).
constexpr int kKickSignal = SIGUSR1;

void install_kick_handler() {
    struct sigaction action {};
    action.sa_handler = [](int) {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    if (::sigaction(kKickSignal, &action, nullptr) < 0) throw_errno("sigaction for the vCPU kick signal");
}

const char* exit_reason_name(uint32_t reason) {
    switch (reason) {
    case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_IO: return "KVM_EXIT_IO";
    case KVM_EXIT_HYPERCALL: return "KVM_EXIT_HYPERCALL";
    case KVM_EXIT_DEBUG: return "KVM_EXIT_DEBUG";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
    case KVM_EXIT_X86_RDMSR: return "KVM_EXIT_X86_RDMSR";
    case KVM_EXIT_X86_WRMSR: return "KVM_EXIT_X86_WRMSR";
    default: return "unnamed exit";
    }
}

std::vector<uint32_t> thread_cpus(pthread_t thread) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (int error = ::pthread_getaffinity_np(thread, sizeof set, &set); error != 0)
        throw HostError(error, "pthread_getaffinity_np of a vCPU thread");
    std::vector<uint32_t> cpus;
    for (uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}

// As Hyper-V keeps its root partition's processors for the root: the vCPU thread runs on the CPUs
// it may use except the root partition's, so that a VSP polling for this vCPU's next request runs
// beside it rather than in its place. False if no CPU would be left (the thread is left as it was).
bool keep_off_cpus(pthread_t thread, const std::vector<uint32_t>& avoid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (int error = ::pthread_getaffinity_np(thread, sizeof set, &set); error != 0)
        throw HostError(error, "pthread_getaffinity_np of a vCPU thread");
    for (uint32_t cpu : avoid) CPU_CLR(cpu, &set);
    if (CPU_COUNT(&set) == 0) return false;
    if (int error = ::pthread_setaffinity_np(thread, sizeof set, &set); error != 0)
        throw HostError(error, "pthread_setaffinity_np of a vCPU thread (off vmbus.root_cpus)");
    return true;
}
}  // namespace

VcpuThread::VcpuThread(Vcpu vcpu, VcpuServices services, std::optional<uint32_t> host_node,
                       std::vector<uint32_t> root_cpus)
    : vcpu_(std::move(vcpu)),
      services_(services),
      kvm_stats_(vcpu_.stats_fd()),
      host_node_(host_node),
      root_cpus_(std::move(root_cpus)) {}

VcpuThread::~VcpuThread() {
    if (thread_.joinable()) {
        kick();
        thread_.join();
    }
}

void VcpuThread::launch() {
    install_kick_handler();
    thread_ = std::thread([this] { thread_main(); });
    ::pthread_setname_np(thread_.native_handle(), fmt::format("vcpu{}", vcpu_.index()).c_str());
    // Pinned here rather than by the thread itself so that a failure is the caller's exception; the
    // thread waits at its gate until release(), so it never runs guest code unpinned.
    if (host_node_) numa::host::pin_thread_to_node(thread_.native_handle(), *host_node_);
    if (!root_cpus_.empty() && !keep_off_cpus(thread_.native_handle(), root_cpus_))
        spdlog::warn("vCPU {} may run only on the root partition's CPUs (vmbus.root_cpus): it shares them", vcpu_.index());
    host_cpus_ = thread_cpus(thread_.native_handle());
}

void VcpuThread::release() { gate_.open(); }

void VcpuThread::kick() {
    __atomic_store_n(&vcpu_.run_state().immediate_exit, 1, __ATOMIC_SEQ_CST);
    gate_.close();
    if (thread_.joinable()) ::pthread_kill(thread_.native_handle(), kKickSignal);
}

void VcpuThread::join() {
    if (thread_.joinable()) thread_.join();
}

void VcpuThread::thread_main() {
    try {
        if (gate_.wait([&] { return services_.control.stopping(); })) run_loop();
    } catch (const std::exception& error) {
        services_.control.request_stop(
            RunOutcome::with(ExitStatus::kHostError, fmt::format("vCPU {}: {}", vcpu_.index(), error.what())));
    }
}

void VcpuThread::run_loop() {
    if (vcpu_.index() == 0) services_.timeline.mark_first_run();
    while (!services_.control.stopping()) {
        if (!vcpu_.run()) {
            exit_counters_.count("signal (kick)");
            continue;
        }
        handle_exit();
    }
}

void VcpuThread::handle_exit() {
    kvm_run& run = vcpu_.run_state();
    switch (run.exit_reason) {
    case KVM_EXIT_IO: handle_io(); return;
    case KVM_EXIT_MMIO: handle_mmio(); return;
    case KVM_EXIT_X86_RDMSR: handle_msr(false); return;
    case KVM_EXIT_X86_WRMSR: handle_msr(true); return;
    case KVM_EXIT_SHUTDOWN:
        exit_counters_.count("shutdown (triple fault)");
        stop_for_guest_crash("triple fault (KVM_EXIT_SHUTDOWN)");
        return;
    case KVM_EXIT_INTERNAL_ERROR:
        exit_counters_.count("internal error");
        stop_for_guest_crash(fmt::format("KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror {})",
                                         run.internal.suberror));
        return;
    case KVM_EXIT_SYSTEM_EVENT:
        exit_counters_.count("system event");
        stop_for_guest_crash(fmt::format("unexpected system event {} (KVM_EXIT_SYSTEM_EVENT)", run.system_event.type));
        return;
    case KVM_EXIT_FAIL_ENTRY:
        exit_counters_.count("failed entry");
        services_.control.request_stop(RunOutcome::with(
            ExitStatus::kHostError,
            fmt::format("vCPU {}: KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {:#x})",
                        vcpu_.index(), run.fail_entry.hardware_entry_failure_reason)));
        return;
    default:
        exit_counters_.count(exit_reason_name(run.exit_reason));
        services_.control.request_stop(RunOutcome::with(
            ExitStatus::kHostError, fmt::format("vCPU {}: unexpected exit {} ({}) at RIP {:#x}", vcpu_.index(),
                                                run.exit_reason, exit_reason_name(run.exit_reason), vcpu_.regs().rip)));
        return;
    }
}

void VcpuThread::handle_io() {
    const std::optional<PioExit> exit = decode_pio_exit(vcpu_.run_area());
    if (!exit) {
        services_.control.request_stop(RunOutcome::with(
            ExitStatus::kHostError, fmt::format("vCPU {}: KVM reported a malformed PIO exit", vcpu_.index())));
        return;
    }
    if (is_hypercall(*exit)) {
        handle_hypercall_port(*exit);
        return;
    }
    const uint16_t port = exit->port;
    const bool out = exit->direction == PioDirection::kOut;
    bool claimed = true;
    for (uint32_t i = 0; i < exit->count; ++i) {
        const std::span<uint8_t> element = exit->data.subspan(size_t{i} * exit->size, exit->size);
        claimed = out ? services_.bus.pio_write(port, element) : services_.bus.pio_read(port, element);
    }
    if (claimed) {
        exit_counters_.count_pio(services_.bus.pio_handler_name(port));
    } else {
        exit_counters_.count("pio unclaimed");
        services_.logs.unclaimed_ports.log("vCPU {}: unclaimed port {:#x} ({})", vcpu_.index(), port,
                                           out ? "write" : "read");
    }
}

// Only the hypercall page's own `out` is a hypercall (hypercalls/page_exit.h). Reading the
// instruction back needs the vCPU's paging registers, an ioctl, so the exit record is checked
// first.
bool VcpuThread::is_hypercall(const PioExit& exit) {
    if (!is_hypercall_page_port(exit.port) || !exit.is_single(PioDirection::kOut, 4)) return false;
    const kvm_regs& regs = vcpu_.synced_registers();
    const GuestCode code = read_guest_code(services_.memory, paging_state(vcpu_.sregs()), regs.rip);
    return is_hypercall_page_out(exit, code, static_cast<uint16_t>(regs.rdx), services_.hypervisor);
}

// The hypercall page's ports (hvkvm/abi/hypercall.h): the generic hypercall exit, and the two
// doorbells when no ioeventfd matched. Results go back in RAX (and RCX = 1 for doorbells) through
// the synced registers.
void VcpuThread::handle_hypercall_port(const PioExit& exit) {
    namespace hv = abi::hv;
    const uint16_t port = exit.port;
    kvm_regs& regs = vcpu_.synced_registers();
    const auto value = static_cast<uint32_t>(devices::load_le(exit.data));
    Hypervisor& hypervisor = services_.hypervisor;
    if (port == hv::kHypercallPort) {
        exit_counters_.count_pio("hypercall");
        regs.rax = hypervisor.hypercall(vcpu_.index(), {regs.rcx, regs.rdx, regs.r8}, services_.control.stop_event_fd());
    } else if (port == hv::kSignalEventPort) {
        exit_counters_.count_pio("doorbell without ioeventfd (SignalEvent)");
        regs.rax = hypervisor.signal_event_doorbell(value);
        regs.rcx = 1;
    } else {
        exit_counters_.count_pio("doorbell without ioeventfd (KickVp)");
        regs.rax = hypervisor.kick_vp_doorbell(value);
        regs.rcx = 1;
    }
    vcpu_.mark_registers_dirty();
}

void VcpuThread::handle_msr(bool write) {
    kvm_run& run = vcpu_.run_state();
    const uint32_t msr = run.msr.index;
    const bool synthetic = msr >= abi::hv::kSyntheticMsrFirst && msr <= abi::hv::kSyntheticMsrLast;
    exit_counters_.count(synthetic ? (write ? "wrmsr synthetic" : "rdmsr synthetic") : "msr unknown to KVM (#GP)");
    bool ok = false;
    if (synthetic && write) {
        ok = services_.hypervisor.write_msr(vcpu_.index(), msr, run.msr.data);
    } else if (synthetic) {
        if (auto value = services_.hypervisor.read_msr(vcpu_.index(), msr)) {
            run.msr.data = *value;
            ok = true;
        }
    }
    if (!ok)
        services_.logs.faulting_msrs.log("vCPU {}: {} of MSR {:#x} faults", vcpu_.index(), write ? "write" : "read", msr);
    run.msr.error = ok ? 0 : 1;  // 1: KVM injects #GP
}

void VcpuThread::handle_mmio() {
    kvm_run& run = vcpu_.run_state();
    const uint32_t length = std::min<uint32_t>(run.mmio.len, sizeof run.mmio.data);
    const bool claimed = run.mmio.is_write ? services_.bus.mmio_write(run.mmio.phys_addr, {run.mmio.data, length})
                                           : services_.bus.mmio_read(run.mmio.phys_addr, {run.mmio.data, length});
    exit_counters_.count(claimed ? "mmio" : "mmio unclaimed");
    if (!claimed)
        services_.logs.unclaimed_mmio.log("vCPU {}: unclaimed MMIO {} at {:#x}", vcpu_.index(),
                                          run.mmio.is_write ? "write" : "read", run.mmio.phys_addr);
}

void VcpuThread::stop_for_guest_crash(const std::string& what) {
    const kvm_regs regs = vcpu_.regs();
    services_.control.request_stop(RunOutcome::with(
        ExitStatus::kGuestCrash, fmt::format("guest crash on vCPU {}: {} at RIP {:#018x} (RSP {:#018x})",
                                             vcpu_.index(), what, regs.rip, regs.rsp)));
}

}  // namespace hvkvm::vmm
