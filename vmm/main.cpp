// vmm: boots a child partition on /dev/kvm from a JSON config. The phases are deliberately
// separate: everything the user can get wrong (arguments, config, kernel image, console file) is
// checked before any VM exists, so invalid input exits 2 with nothing started.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <optional>

#include "boot/elf_loader.h"
#include "cli/cli.h"
#include "config/config.h"
#include "config/host_numa_check.h"
#include "control/control_server.h"
#include "console/console_output.h"
#include "host/host_platform.h"
#include "kvm/kvm_error.h"
#include "machine/machine.h"
#include "machine/stop_signals.h"
#include "storage/disk_image.h"

namespace hvkvm::vmm {
namespace {

constexpr const char* kVersion = "0.1.0";

void set_up_logging(bool verbose) {
    auto logger = spdlog::stderr_color_mt("vmm");
    logger->set_pattern("vmm: %^%l%$: %v");
    logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
    spdlog::set_default_logger(logger);
}

int invalid_input(const std::string& message) {
    spdlog::error("{}", message);
    return static_cast<int>(ExitStatus::kInvalidInput);
}

struct PreparedRun {
    VmConfig config;
    KernelImage kernel;
    HostPlatform host;
    GuestCpuMode cpu_mode;
    std::vector<DiskImage> disks;
};

// The host nodes the config names must exist and suit their use (numa/host reads the host's list).
void check_host_placement(const NumaConfig& numa) {
    const bool names_host_nodes = std::any_of(numa.nodes.begin(), numa.nodes.end(),
                                              [](const NumaNodeConfig& node) { return node.host_node.has_value(); });
    if (!names_host_nodes) return;
    std::vector<numa::host::HostNode> host;
    try {
        host = numa::host::host_nodes();
    } catch (const numa::host::HostNumaError& error) {
        throw ConfigError("numa.nodes", fmt::format("host_node is set, but {}", error.what()));
    }
    check_host_numa_placement(numa, host);
}

// The loader writes each segment into one RAM region, and each NUMA node is its own region: the
// kernel image must lie inside node 0.
void check_kernel_within_node_0(const KernelImage& kernel, const VmConfig& config) {
    if (!config.numa.enabled()) return;  // one region below the MMIO hole: check_kernel_fits covers it
    const MemoryLayout layout = memory_layout_for(config);
    const RamRegion* region = layout.region_containing(kernel.start, kernel.end - kernel.start);
    if (region && region->node == 0) return;
    const uint64_t needed_mib = (kernel.end + (2 << 20) - 1) / (2 << 20) * 2;
    throw ConfigError("numa.nodes[0].memory_mib",
                      fmt::format("{} MiB does not hold the kernel image, which ends at {:#x} (node 0 needs at least {} MiB)",
                                  config.numa.nodes[0].memory_mib, kernel.end, needed_mib));
}

// Everything that can be rejected as bad input, before a VM exists. Throws ConfigError.
PreparedRun prepare(const CommandLine& command) {
    VmConfig config = load_config(command.config_file, command.overrides);
    check_host_placement(config.numa);
    KernelImage kernel;
    try {
        kernel = read_kernel_elf(config.kernel.path);
        check_kernel_fits(kernel, std::min<uint64_t>(config.machine.memory_mib << 20, abi::kMmioHoleStart));
    } catch (const ElfError& error) {
        throw ConfigError("kernel.path", fmt::format("{}: {}", config.kernel.path.string(), error.what()));
    }
    check_kernel_within_node_0(kernel, config);
    const HostPlatform host = detect_host_platform();
    const GuestCpuMode cpu_mode = resolve_cpu_mode(config.machine.cpu_mode, host);
    std::vector<DiskImage> disks = open_disk_images(config.disks);  // opened and locked: no other VM takes them now
    return PreparedRun{std::move(config), std::move(kernel), host, cpu_mode, std::move(disks)};
}

ConsoleOutput open_console(const ConsoleConfig& console) {
    if (console.to_stdout()) return ConsoleOutput::to_stdout();
    try {
        return ConsoleOutput::to_file(console.output_file);
    } catch (const HostError& error) {
        throw ConfigError("console.output", error.what());
    }
}

int run_vm(const CommandLine& command, const StopSignals& signals, BootTimeline& timeline) {
    std::optional<PreparedRun> prepared;
    std::optional<ConsoleOutput> console;
    try {
        prepared = prepare(command);
        console.emplace(open_console(prepared->config.console));
    } catch (const ConfigError& error) {
        return invalid_input(fmt::format("{}: {}", command.config_file.string(), error.what()));
    }
    const VmConfig& config = prepared->config;
    spdlog::info("booting {} on {} vCPU(s), {} MiB, cpu mode {} (host KVM: {})", config.kernel.path.string(),
                 config.machine.vcpus, config.machine.memory_mib, to_string(prepared->cpu_mode),
                 prepared->host.pvm ? "PVM" : "hardware-virtualized");

    timeline.mark_vmm_step("config, kernel and console validated");
    Machine machine(MachineSpec{config, prepared->kernel, prepared->cpu_mode, prepared->host, prepared->disks}, *console,
                    timeline);
    const RunOutcome outcome = machine.run(signals);
    console->finish();  // bounded: an unread console cannot hold up the end of the run
    machine.print_report();
    if (outcome.status == 0) spdlog::info("{}", outcome.summary);
    else spdlog::error("{} (exit status {})", outcome.summary, outcome.status);
    return outcome.status;
}

// `vmm ctl`: one request, the answer printed as indented JSON.
int control(const CommandLine& command) {
    try {
        const std::string answer = control_request(command.control_socket, command.control_request);
        const nlohmann::json parsed = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
        if (parsed.is_discarded()) {
            fmt::print(stderr, "vmm ctl: the VM answered something that is not JSON: {}\n", answer);
            return 1;
        }
        fmt::print("{}\n", parsed.dump(2));
        return parsed.value("ok", false) ? 0 : 1;
    } catch (const std::exception& error) {
        fmt::print(stderr, "vmm ctl: {}\n", error.what());
        return 1;
    }
}

int main_with_status(int argc, char** argv) {
    const auto vmm_start = BootTimeline::Clock::now();
    CommandLine command;
    try {
        command = parse_command_line({argv + 1, argv + argc});
    } catch (const UsageError& error) {
        fmt::print(stderr, "vmm: {}\n{}", error.what(), usage_text());
        return static_cast<int>(ExitStatus::kInvalidInput);
    }
    switch (command.action) {
    case CommandLine::Action::kHelp: fmt::print("{}", usage_text()); return 0;
    case CommandLine::Action::kVersion: fmt::print("vmm {}\n", kVersion); return 0;
    case CommandLine::Action::kControl: return control(command);
    case CommandLine::Action::kRun: break;
    }
    // First, so that a stop signal arriving during set-up waits for the run (and stops it) rather
    // than killing the process; every thread started from here on inherits the blocked mask.
    StopSignals signals;
    set_up_logging(command.verbose);
    // A reader that goes away (`vmm run ... | head`) must not kill the VMM: writes to it fail with
    // EPIPE instead, which the console and the logger survive.
    std::signal(SIGPIPE, SIG_IGN);
    BootTimeline timeline(vmm_start);
    try {
        return run_vm(command, signals, timeline);
    } catch (const std::exception& error) {
        spdlog::error("{}", error.what());
        return static_cast<int>(ExitStatus::kHostError);
    }
}

}  // namespace
}  // namespace hvkvm::vmm

int main(int argc, char** argv) { return hvkvm::vmm::main_with_status(argc, argv); }
