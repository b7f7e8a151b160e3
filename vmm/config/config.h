// The VM configuration: a JSON file plus `--set dotted.key=value` overrides, validated strictly.
// Any problem (unknown key, wrong type, out-of-range value, unreadable file) becomes one
// ConfigError whose message starts with the key path, e.g. "machine.vcpus: must be 1..64, got 0".
// docs/config.md documents every key; keep the two in step.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "storage/io/disk_fault.h"

namespace hvkvm::vmm {

enum class CpuMode { kAuto, kPvm, kClassic };

struct MachineConfig {
    uint32_t vcpus = 1;
    uint64_t memory_mib = 256;
    CpuMode cpu_mode = CpuMode::kAuto;
};

struct KernelConfig {
    std::filesystem::path path;  // absolute after loading
    std::string cmdline;
};

struct ConsoleConfig {
    // Empty: the VMM's standard output; otherwise a file, created or truncated.
    std::filesystem::path output_file;
    bool to_stdout() const { return output_file.empty(); }
};

// The control socket `vmm ctl` talks to (empty: none).
struct ControlConfig {
    std::filesystem::path socket;
};

struct EnlightenmentsConfig {
    bool spinlock = true;       // recommend paravirtual spinlocks (CPUID 0x40000004 EBX)
    uint32_t spin_count = 4095; // spins before notifying the hypervisor (Hyper-V 2016's default)
};

struct NumaNodeConfig {
    std::vector<uint32_t> vcpus;      // vCPU indices; every vCPU is in exactly one node
    uint64_t memory_mib = 0;          // even; the nodes' sizes add up to machine.memory_mib
    std::optional<uint32_t> host_node;  // bind this node's RAM to that host node
};

// Virtual NUMA topology (limits and distance rules: numa/). Empty `nodes`: one node holding every
// vCPU and all RAM.
struct NumaConfig {
    std::vector<NumaNodeConfig> nodes;
    // distances[i][j]: SLIT semantics, 10 local, 11..254 remote, 255 unreachable.
    std::vector<std::vector<uint32_t>> distances;
    bool pin_vcpus = false;  // pin each vCPU thread to its node's host CPUs
    bool enabled() const { return !nodes.empty(); }
};

enum class DiskBus { kVmbus, kIde };
enum class DiskCache { kNone, kWriteback };  // none: O_DIRECT, no host page cache

// One disk image. Checked (opened, sized, locked) before the VM exists: vmm/storage/disk_image.h.
struct DiskConfig {
    std::string id;                 // unique; [a-z0-9_-], 1..32 characters
    std::filesystem::path path;     // a raw image: regular file or block device
    DiskBus bus = DiskBus::kVmbus;
    bool read_only = false;
    DiskCache cache = DiskCache::kNone;
    std::optional<uint64_t> size_mib;  // if given, the image must be exactly this size
};

// VMBus: the root-partition process and the channels it offers.
inline constexpr uint32_t kMaxPollWindowUs = 1000;  // the root's event loop serves every channel
struct VmbusConfig {
    bool enabled = true;
    // SIGTERM or `vmm ctl ... shutdown` asks the guest to shut down (shutdown integration
    // service); a guest that has not stopped by then is stopped (status 143 for SIGTERM).
    uint32_t shutdown_timeout_ms = 2000;
    // How long a VSP that polls (the echo VSP) keeps polling its ring after a drain before it
    // sleeps (root-partition/poll_window.h): a guest's next request within it costs no exit.
    uint32_t poll_window_us = 50;
    // Host CPUs the root-partition process runs on (sched_setaffinity), as Hyper-V's root has its
    // own processors; empty: wherever the host scheduler puts it.
    std::vector<uint32_t> root_cpus;
};

enum class RootPartitionFault { kNone, kForbiddenSyscall, kCrash, kHang };

// A host I/O fault injected on one disk (a test facility, docs/config.md "debug.disk_fault").
struct DiskFaultConfig {
    std::string disk;  // a disks[].id
    storage::DiskFault fault;
};

// The ACPI tables the VMM writes, by signature ("RSD PTR " is the RSDP).
inline const std::vector<std::string> kAcpiTableSignatures = {"RSD PTR ", "XSDT", "APIC", "SRAT", "SLIT"};

// Test and diagnostic devices and faults.
struct DebugConfig {
    bool interrupt_generator = false;  // abi/devices.h: in-guest tests raise host interrupts
    bool synic_echo = false;           // abi/synic.h: in-guest tests receive SynIC messages and events
    // Make the root partition misbehave once it is ready (tests of the VMM's handling).
    RootPartitionFault root_partition_fault = RootPartitionFault::kNone;
    std::optional<DiskFaultConfig> disk_fault;
    // Non-empty: the VMM spoils this ACPI table's checksum after writing it, to test the guest's
    // refusal of malformed tables (it must panic naming the table).
    std::string corrupt_acpi_table;
};

// Host KVP pairs (the external pool), sent to the guest when it opens the KVP channel.
inline constexpr size_t kMaxKvpPairs = 64;
using KvpConfig = std::map<std::string, std::string>;

struct VmConfig {
    MachineConfig machine;
    KernelConfig kernel;
    ConsoleConfig console;
    ControlConfig control;
    std::vector<DiskConfig> disks;
    EnlightenmentsConfig enlightenments;
    NumaConfig numa;
    VmbusConfig vmbus;
    KvpConfig kvp;
    DebugConfig debug;
};

class ConfigError : public std::runtime_error {
public:
    // `key_path` may be empty for problems with the file as a whole (e.g. JSON syntax).
    ConfigError(std::string key_path, const std::string& problem)
        : std::runtime_error(key_path.empty() ? problem : key_path + ": " + problem),
          key_path_(std::move(key_path)) {}
    const std::string& key_path() const { return key_path_; }

private:
    std::string key_path_;
};

inline constexpr uint64_t kMinMemoryMib = 16;
inline constexpr uint64_t kMaxMemoryMib = 65536;
inline constexpr size_t kMaxCmdlineLength = 4095;
inline constexpr uint32_t kMaxSpinCount = 1u << 30;
inline constexpr uint32_t kDefaultRemoteDistance = 20;  // between nodes, when the config gives no matrix
inline constexpr uint32_t kMaxDisks = 16;     // VMBus LUNs and IDE devices together
inline constexpr uint32_t kMaxIdeDisks = 2;   // the primary channel's master and slave

// Reads `file`, applies the `--set` overrides in order, and validates the result. Relative paths
// in the file are resolved against the file's folder; relative paths given with --set against the
// current directory (where the user typed them).
VmConfig load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides);

// Validation of an already-parsed document; exposed for tests. `config_dir` resolves relative
// paths of keys not in `overridden_keys`; overridden ones resolve against the current directory.
VmConfig parse_config(const std::string& json_text, const std::filesystem::path& config_dir,
                      const std::vector<std::string>& overrides = {});

const char* to_string(CpuMode mode);

}  // namespace hvkvm::vmm
