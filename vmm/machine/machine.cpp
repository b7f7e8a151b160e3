#include "machine/machine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "boot/acpi_tables.h"
#include "boot/boot_setup.h"
#include "catalog.h"
#include "cpu/cpuid.h"
#include "hvkvm/abi/hypercall.h"
#include "kvm/kvm_error.h"
#include "machine/numa_placement.h"
#include "machine/stop_signals.h"
#include "stats/guest_report.h"
#include "stats/run_report.h"

namespace hvkvm::vmm {

Machine::Machine(const MachineSpec& spec, ConsoleOutput& console, BootTimeline& timeline)
    : config_(spec.config), timeline_(timeline), partition_(spec.config, timeline),
      device_context_{spec.config,       partition_.bus(),        partition_.memory(),
                      partition_.interrupts(), partition_.hypervisor(), partition_.synic(),
                      partition_.vm(),         spec.disks,              console,
                      *this},
      devices_(devices::device_catalog(), device_context_),
      shutdown_timeout_ms_(spec.config.vmbus.shutdown_timeout_ms), shutdown_event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!shutdown_event_.valid()) throw_errno("eventfd for orderly shutdown");
    prepare_boot(spec);
    if (!spec.config.control.socket.empty()) {
        try {
            control_server_ = std::make_unique<ControlServer>(
                spec.config.control.socket, [this](const nlohmann::json& request) { return control(request); });
        } catch (const HostError& error) {
            throw HostError(error.code().value(), fmt::format("control.socket: {}", error.what()));
        }
        spdlog::info("control socket: {}", spec.config.control.socket.string());
    }
}

Machine::~Machine() {
    control_server_.reset();
    for (auto& vcpu : vcpus_) vcpu->kick();
}

// Loads the kernel and the boot structures (hvkvm/abi/boot.h), creates every vCPU and sets the
// boot vCPU to the kernel's entry; the others wait for the guest to start them.
void Machine::prepare_boot(const MachineSpec& spec) {
    GuestMemory& memory = partition_.memory();
    load_kernel(spec.kernel, memory);
    write_boot_gdt(memory);
    const BootLayout layout = build_boot_page_tables(memory);
    timeline_.mark_vmm_step("kernel loaded, page tables built");

    create_vcpus(spec);
    timeline_.mark_vmm_step("vCPUs created");
    vcpus_.front()->claim_start();
    Vcpu& bsp = vcpus_.front()->vcpu();
    bsp.set_sregs(long_mode_sregs(bsp.sregs(), layout.page_tables_gpa));
    bsp.set_regs(entry_regs(spec.kernel.entry, 0));
    tsc_khz_ = bsp.tsc_khz();
    partition_.hypervisor().set_tsc_khz(tsc_khz_);

    const uint32_t boot_flags = (spec.host.pvm ? uint32_t{abi::kBootFlagPvmHost} : 0u) |
                                (spec.cpu_mode == GuestCpuMode::kPvm ? uint32_t{abi::kBootFlagUsePvm} : 0u);
    const AcpiPlacement acpi = write_acpi_tables(memory, guest_topology(spec.config, memory.layout()),
                                                 spec.config.machine.vcpus, spec.config.debug.corrupt_acpi_table);
    write_boot_info(memory, spec.kernel, layout,
                    BootParameters{spec.config.machine.vcpus, boot_flags, tsc_khz_, spec.config.kernel.cmdline, acpi});
}

void Machine::create_vcpus(const MachineSpec& spec) {
    const auto supported = partition_.kvm().supported_cpuid();
    const uint32_t count = spec.config.machine.vcpus;
    const EnlightenmentsConfig& enlightenments = spec.config.enlightenments;
    const long host_cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    const HypervisorLeaves leaves{enlightenments.spinlock ? enlightenments.spin_count : abi::hv::kSpinCountNeverNotify,
                                  abi::kMaxVcpus, host_cpus > 0 ? static_cast<uint32_t>(host_cpus) : 0};
    Hypervisor& hypervisor = partition_.hypervisor();
    const std::vector<uint32_t> root_cpus = spec.config.vmbus.enabled ? spec.config.vmbus.root_cpus : std::vector<uint32_t>{};
    for (uint32_t index = 0; index < count; ++index) {
        Vcpu vcpu = partition_.vm().create_vcpu(index);
        vcpu.set_cpuid(vcpu_cpuid(supported, index, count, leaves));
        vcpu.sync_registers_on_exit();
        partition_.vm().add_pio_doorbell(abi::hv::kKickVpPort, index, hypervisor.kick_eventfd(index));
        vcpus_.push_back(std::make_unique<VcpuThread>(
            std::move(vcpu), VcpuServices{partition_.bus(), control_, timeline_, hypervisor, partition_.memory(), logs_},
            vcpu_host_node(spec.config.numa, index), root_cpus));
    }
}

RunOutcome Machine::run(const StopSignals& signals) {
    devices_.start_all();
    for (auto& vcpu : vcpus_) vcpu->launch();
    vcpus_.front()->release();
    wait_for_stop(signals);
    control_server_.reset();  // no more requests while the VM goes away
    timeline_.mark_guest_stop();
    for (auto& vcpu : vcpus_) vcpu->kick();
    for (auto& vcpu : vcpus_) vcpu->join();
    devices_.stop_all();
    logs_.report_suppressed();
    return control_.outcome();
}

// The main thread: waits for the stop request, stop signals, and the deadline of an orderly
// shutdown in progress.
void Machine::wait_for_stop(const StopSignals& signals) {
    pollfd fds[3] = {{control_.stop_event_fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}, {shutdown_event_.get(), POLLIN, 0}};
    while (!control_.stopping()) {
        int timeout_ms = -1;
        {
            std::lock_guard lock(shutdown_mutex_);
            if (shutdown_deadline_) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*shutdown_deadline_ - BootTimeline::Clock::now());
                if (left.count() <= 0) {
                    const int signal = shutdown_signal_;
                    control_.request_stop({static_cast<int>(ExitStatus::kSignalBase) + signal,
                                           fmt::format("stopped by SIG{}: the guest did not shut down within {} ms",
                                                       ::sigabbrev_np(signal), shutdown_timeout_ms_)});
                    return;
                }
                timeout_ms = static_cast<int>(left.count());
            }
        }
        if (::poll(fds, 3, timeout_ms) < 0 && errno != EINTR) throw_errno("poll for VM stop");
        if (fds[2].revents & POLLIN) {
            uint64_t ignored;
            [[maybe_unused]] ssize_t got = ::read(shutdown_event_.get(), &ignored, sizeof ignored);
        }
        if (fds[1].revents & POLLIN)
            if (auto signal = signals.read_signal()) on_stop_signal(*signal);
    }
}

// SIGTERM and SIGINT (Ctrl-C) ask the guest to shut down in order, as Hyper-V's Stop-VM does: a
// guest that stops in time ends the run with its own status (0). A second signal while it shuts
// down, or a guest without the shutdown service, stops the VM at once with 128 + the signal.
void Machine::on_stop_signal(int signal) {
    bool in_progress;
    {
        std::lock_guard lock(shutdown_mutex_);
        in_progress = shutdown_deadline_.has_value();
    }
    if (!in_progress && begin_orderly_shutdown(signal)) {
        spdlog::info("SIG{} received: asked the guest to shut down (stopping it in {} ms otherwise, or at once on a second "
                     "signal)", ::sigabbrev_np(signal), shutdown_timeout_ms_);
        return;
    }
    spdlog::info("SIG{} received: stopping the VM", ::sigabbrev_np(signal));
    control_.request_stop({static_cast<int>(ExitStatus::kSignalBase) + signal,
                           fmt::format("stopped by SIG{}", ::sigabbrev_np(signal))});
}

bool Machine::begin_orderly_shutdown(int signal) {
    if (!devices_.request_guest_shutdown()) return false;
    {
        std::lock_guard lock(shutdown_mutex_);
        if (!shutdown_deadline_) {
            shutdown_deadline_ = BootTimeline::Clock::now() + std::chrono::milliseconds(shutdown_timeout_ms_);
            shutdown_signal_ = signal;
        }
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(shutdown_event_.get(), &one, sizeof one);
    return true;
}

// Requests on the control socket (its thread). "status" and "shutdown" are the machine's; every
// other command goes to the devices (channels, heartbeat, kvp: the root partition).
nlohmann::json Machine::control(const nlohmann::json& request) {
    const std::string command = request.value("command", "");
    if (command == "status") return status();
    if (command == "shutdown") {
        if (control_.stopping()) return {{"ok", false}, {"error", "the VM is already stopping"}};
        if (!begin_orderly_shutdown(SIGTERM))
            return {{"ok", false}, {"error", "the guest has no shutdown service open; stop vmm with a signal instead"}};
        return {{"ok", true}, {"deadline_ms", shutdown_timeout_ms_}};
    }
    if (auto answer = devices_.control(request)) return *answer;
    return {{"ok", false}, {"error", "unknown command \"" + command + "\""}};
}

nlohmann::json Machine::status() const {
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(BootTimeline::Clock::now() - started_);
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& name : devices_.names()) devices.push_back(name);
    uint32_t started = 0;
    for (const auto& vcpu : vcpus_) started += vcpu->started();
    nlohmann::json status = {{"ok", true},
                             {"state", control_.stopping() ? "stopping" : "running"},
                             {"uptime_ms", uptime.count()},
                             {"vcpus", vcpus_.size()},
                             {"vcpus_started", started},
                             {"memory_mib", partition_.memory().size() >> 20},
                             {"guest_main_reached", timeline_.milestone_ms(abi::BootPhase::kKernelMain).has_value()},
                             {"devices", devices}};
    devices_.add_status(status);
    return status;
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
            describe_guest_crash(read_guest_report(partition_.memory()).crash, static_cast<uint32_t>(vcpus_.size()))));
        return;
    }
    control_.request_stop(RunOutcome::with(
        ExitStatus::kGuestFailure, fmt::format("guest wrote unknown exit code {:#x} to the debug-exit port", exit_code)));
}

void Machine::stop_for_host_error(std::string reason) {
    control_.request_stop(RunOutcome::with(ExitStatus::kHostError, std::move(reason)));
}

void Machine::on_boot_milestone(uint32_t phase) {
    if (phase < abi::kBootPhaseCount) timeline_.mark_milestone(static_cast<abi::BootPhase>(phase));
    else logs_.unknown_milestones.log("guest marked unknown boot phase {}", phase);
}

// Any vCPU thread. Reading every vCPU's stats descriptor (pread) needs no help from their threads.
void Machine::on_stats_window(uint32_t command) {
    switch (static_cast<abi::StatsWindowCommand>(command)) {
    case abi::StatsWindowCommand::kOpen: measurement_window_.open(vcpu_counters(), MeasurementWindow::Clock::now()); return;
    case abi::StatsWindowCommand::kClose:
        if (!measurement_window_.close(vcpu_counters(), MeasurementWindow::Clock::now()))
            logs_.unknown_stats_window_commands.log("guest closed a measurement window it had not opened");
        return;
    }
    logs_.unknown_stats_window_commands.log("guest wrote unknown measurement-window command {}", command);
}

std::vector<KvmStat> Machine::vcpu_counters() const {
    std::vector<KvmStat> sum;
    for (const auto& vcpu : vcpus_) accumulate(sum, vcpu->kvm_counters());
    return sum;
}

void Machine::on_start_vcpu(uint32_t request_gpa) {
    constexpr uint64_t kStatusOffset = offsetof(abi::VcpuStartRequest, status);
    auto bytes = partition_.memory().translate(request_gpa, sizeof(abi::VcpuStartRequest));
    if (!bytes) {
        logs_.unreachable_start_requests.log(
            "guest asked to start a vCPU with a request at {:#x}, which is not guest RAM", request_gpa);
        return;  // nowhere to write a status
    }
    abi::VcpuStartStatus status = abi::VcpuStartStatus::kInvalidRequest;
    abi::VcpuStartRequest request{};
    if (request_gpa % alignof(abi::VcpuStartRequest) == 0) {
        std::memcpy(&request, bytes->data(), sizeof request);  // copy once, then validate the copy
        status = start_vcpu(request);
    }
    std::memcpy(bytes->data() + kStatusOffset, &status, sizeof status);
    if (status != abi::VcpuStartStatus::kStarted)
        logs_.refused_start_requests.log("start of vCPU {} refused (status {})", request.vcpu_index,
                                         static_cast<uint32_t>(status));
}

abi::VcpuStartStatus Machine::start_vcpu(const abi::VcpuStartRequest& request) {
    const abi::VcpuStartStatus verdict =
        check_start_request(request, static_cast<uint32_t>(vcpus_.size()), partition_.memory());
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

// Host placement of guest RAM and vCPU threads, then the guest's own per-node allocation counters
// (from the report page: untrusted, so the node count is bounded before use).
std::vector<std::string> Machine::describe_numa(const abi::GuestReport& guest) const {
    std::vector<std::string> lines = describe_memory_placement(partition_.memory(), config_.numa);
    if (config_.numa.pin_vcpus) {
        for (const auto& vcpu : vcpus_)
            lines.push_back(fmt::format("vcpu{}: pinned to host node {}, runs on host CPUs {}", vcpu->vcpu().index(),
                                        vcpu->host_node() ? std::to_string(*vcpu->host_node()) : "none",
                                        cpu_list_text(vcpu->host_cpus())));
    }
    if (guest.numa_node_count == 0 || guest.numa_node_count > abi::kMaxReportedNumaNodes) return lines;
    lines.push_back("guest page allocations by node at exit (pages; reported by the guest):");
    lines.push_back(fmt::format("  {:>4} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>18}", "node", "hit", "miss", "foreign",
                                "local", "other", "migrated-in", "free / managed"));
    for (uint32_t node = 0; node < guest.numa_node_count; ++node) {
        const abi::NumaNodeCounters& c = guest.numa_nodes[node];
        lines.push_back(fmt::format("  {:>4} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>18}", node, c.hit, c.miss, c.foreign,
                                    c.local, c.other, c.migrated_in, fmt::format("{} / {}", c.free_pages, c.managed_pages)));
    }
    return lines;
}

void Machine::print_report() {
    const abi::GuestReport guest = read_guest_report(partition_.memory());
    std::array<uint64_t, abi::kBootPhaseCount> phase_tsc{};
    std::copy(std::begin(guest.phase_tsc), std::end(guest.phase_tsc), phase_tsc.begin());

    RunReport report;
    report.timeline = timeline_.entries(phase_tsc, tsc_khz_);
    report.guest_main_ms = timeline_.milestone_ms(abi::BootPhase::kKernelMain);
    report.guest_platform = describe_guest_platform(guest.platform);
    ExitCounters exits;
    for (const auto& vcpu : vcpus_) exits.merge(vcpu->exit_counters());
    report.kvm_vcpu_counters = vcpu_counters();
    report.measurement_window = measurement_window_.last();
    report.vmm_exit_counts = exits.counts();
    for (const auto& [name, count] : partition_.hypervisor().final_call_counts()) report.hypercalls.emplace_back(name, count);
    report.devices = devices_.reports();
    report.numa = describe_numa(guest);
    report.kvm_vm_counters = partition_.vm_counters();
    print_run_report(report, stderr);
}

}  // namespace hvkvm::vmm
