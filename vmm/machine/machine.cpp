#include "machine/machine.h"

#include <poll.h>
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
#include "hvkvm/abi/x86_exceptions.h"
#include "kvm/kvm_error.h"
#include "machine/numa_placement.h"
#include "machine/stop_signals.h"
#include "stats/run_report.h"

namespace hvkvm::vmm {
namespace {

const char* exception_mnemonic(uint32_t vector) {
    const abi::ExceptionName* name = abi::exception_name(vector);
    return name ? name->mnemonic : "interrupt";
}

// A guest-written string, bounded and reduced to printable ASCII.
std::string sanitize(const char* text, size_t capacity) {
    std::string result;
    for (size_t i = 0; i < capacity && text[i]; ++i)
        result += (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    return result;
}

}  // namespace

Machine::Machine(const MachineSpec& spec, ConsoleOutput& console, BootTimeline& timeline)
    : config_(spec.config), timeline_(timeline), partition_(spec.config, timeline),
      device_context_{spec.config,           partition_.bus(),        partition_.memory(), partition_.interrupts(),
                      partition_.hypervisor(), console, *this},
      devices_(devices::device_catalog(), device_context_) {
    prepare_boot(spec);
}

Machine::~Machine() {
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
    for (uint32_t index = 0; index < count; ++index) {
        Vcpu vcpu = partition_.vm().create_vcpu(index);
        vcpu.set_cpuid(vcpu_cpuid(supported, index, count, leaves));
        vcpu.sync_registers_on_exit();
        partition_.vm().add_pio_doorbell(abi::hv::kKickVpPort, index, hypervisor.kick_eventfd(index));
        vcpus_.push_back(std::make_unique<VcpuThread>(std::move(vcpu),
                                                      VcpuServices{partition_.bus(), control_, timeline_, hypervisor},
                                                      vcpu_host_node(spec.config.numa, index)));
    }
}

RunOutcome Machine::run(const StopSignals& signals) {
    devices_.start_all();
    for (auto& vcpu : vcpus_) vcpu->launch();
    vcpus_.front()->release();
    wait_for_stop(signals);
    timeline_.mark_guest_stop();
    for (auto& vcpu : vcpus_) vcpu->kick();
    for (auto& vcpu : vcpus_) vcpu->join();
    devices_.stop_all();
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
        control_.request_stop(describe_guest_crash());
        return;
    }
    control_.request_stop(RunOutcome::with(
        ExitStatus::kGuestFailure, fmt::format("guest wrote unknown exit code {:#x} to the debug-exit port", exit_code)));
}

void Machine::on_boot_milestone(uint32_t phase) {
    if (phase < abi::kBootPhaseCount) timeline_.mark_milestone(static_cast<abi::BootPhase>(phase));
    else spdlog::debug("guest marked unknown boot phase {}", phase);
}

void Machine::on_start_vcpu(uint32_t request_gpa) {
    constexpr uint64_t kStatusOffset = offsetof(abi::VcpuStartRequest, status);
    auto bytes = partition_.memory().translate(request_gpa, sizeof(abi::VcpuStartRequest));
    if (!bytes) {
        spdlog::debug("guest asked to start a vCPU with a request at {:#x}, which is not guest RAM", request_gpa);
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
        spdlog::debug("start of vCPU {} refused (status {})", request.vcpu_index, static_cast<uint32_t>(status));
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

abi::GuestReport Machine::read_guest_report() const {
    abi::GuestReport report;
    std::memcpy(&report, partition_.memory().span(abi::kGuestReportGpa, sizeof report).data(), sizeof report);
    if (report.magic != abi::kGuestReportMagic) std::memset(&report, 0, sizeof report);
    return report;
}

RunOutcome Machine::describe_guest_crash() const {
    const abi::CrashRecord crash = read_guest_report().crash;
    switch (crash.kind) {
    case abi::CrashKind::kException: {
        const std::string diagnosis = sanitize(crash.message, sizeof crash.message);
        return RunOutcome::with(
            ExitStatus::kGuestCrash,
            fmt::format("guest crash on vCPU {}: unhandled exception {} (vector {}, error code {:#x}) at RIP {:#018x}, "
                        "CR2 {:#x}{}{}", crash.cpu, exception_mnemonic(crash.vector), crash.vector, crash.error_code,
                        crash.rip, crash.cr2, diagnosis.empty() ? "" : ": ", diagnosis));
    }
    case abi::CrashKind::kPanic:
        return RunOutcome::with(ExitStatus::kGuestCrash,
                                fmt::format("guest panic on vCPU {}: {} (RIP {:#018x})", crash.cpu,
                                            sanitize(crash.message, sizeof crash.message), crash.rip));
    default:
        return RunOutcome::with(ExitStatus::kGuestCrash, "guest reported a crash but left no crash record");
    }
}

void Machine::print_report() {
    const abi::GuestReport guest = read_guest_report();
    std::array<uint64_t, abi::kBootPhaseCount> phase_tsc{};
    std::copy(std::begin(guest.phase_tsc), std::end(guest.phase_tsc), phase_tsc.begin());

    RunReport report;
    report.timeline = timeline_.entries(phase_tsc, tsc_khz_);
    report.guest_main_ms = timeline_.milestone_ms(abi::BootPhase::kKernelMain);
    report.guest_platform = guest.platform == static_cast<uint32_t>(abi::GuestPlatform::kPvm)       ? "pvm"
                            : guest.platform == static_cast<uint32_t>(abi::GuestPlatform::kClassic) ? "classic"
                                                                                                     : "unknown";
    ExitCounters exits;
    for (const auto& vcpu : vcpus_) {
        exits.merge(vcpu->exit_counters());
        accumulate(report.kvm_vcpu_counters, vcpu->kvm_counters());
    }
    report.vmm_exit_counts = exits.counts();
    for (const auto& [name, count] : partition_.hypervisor().final_call_counts()) report.hypercalls.emplace_back(name, count);
    report.devices = devices_.reports();
    report.numa = describe_numa(guest);
    report.kvm_vm_counters = partition_.vm_counters();
    print_run_report(report, stderr);
}

}  // namespace hvkvm::vmm
