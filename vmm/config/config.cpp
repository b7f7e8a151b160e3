#include "config/config.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "hvkvm/abi/boot.h"
#include "hvkvm/numa/distance.h"
#include "vmbus/services/ic_codec.h"

namespace hvkvm::vmm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string join_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

// JSON type names as a user would say them, for "expected X, got Y" messages.
std::string describe(const json& value) {
    switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return fmt::format("boolean {}", value.get<bool>());
    case json::value_t::string: return fmt::format("string \"{}\"", value.get<std::string>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return fmt::format("integer {}", value.dump());
    case json::value_t::number_float: return fmt::format("number {}", value.dump());
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return "an unsupported value";
    }
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1u : 0u)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// An integer in [min, max], or a ConfigError naming `path`.
uint64_t integer_value(const json& value, const std::string& path, uint64_t min, uint64_t max) {
    const std::string range = fmt::format("must be {}..{}", min, max);
    if (!value.is_number_integer()) throw ConfigError(path, fmt::format("{}, got {}", range, describe(value)));
    if (value.is_number_unsigned()) {
        const uint64_t number = value.get<uint64_t>();
        if (number >= min && number <= max) return number;
    }
    throw ConfigError(path, fmt::format("{}, got {}", range, value.dump()));
}

// An array of integers in [min, max] with at most `max_count` elements.
std::vector<uint64_t> integer_array(const json& value, const std::string& path, uint64_t min, uint64_t max,
                                    size_t max_count) {
    if (!value.is_array()) throw ConfigError(path, fmt::format("expected an array of integers, got {}", describe(value)));
    if (value.size() > max_count)
        throw ConfigError(path, fmt::format("must have at most {} elements, got {}", max_count, value.size()));
    std::vector<uint64_t> numbers;
    for (size_t i = 0; i < value.size(); ++i)
        numbers.push_back(integer_value(value[i], fmt::format("{}[{}]", path, i), min, max));
    return numbers;
}

// Reads one JSON object against a fixed list of allowed keys. Construction rejects non-objects
// and unknown keys (with a "did you mean" hint), so typos are reported before anything else.
class ObjectReader {
public:
    ObjectReader(const json& object, std::string path, std::vector<std::string> allowed_keys)
        : object_(object), path_(std::move(path)) {
        if (!object_.is_object())
            throw ConfigError(path_, fmt::format("expected an object, got {}", describe(object_)));
        for (const auto& [key, value] : object_.items()) {
            if (std::find(allowed_keys.begin(), allowed_keys.end(), key) != allowed_keys.end())
                continue;
            throw ConfigError(join_path(path_, key), unknown_key_message(allowed_keys, key));
        }
    }

    const std::string& path() const { return path_; }
    std::string key_path(const std::string& key) const { return join_path(path_, key); }
    bool has(const std::string& key) const { return object_.contains(key); }
    const json& at(const std::string& key) const { return object_.at(key); }

    std::optional<uint64_t> integer(const std::string& key, uint64_t min, uint64_t max) const {
        if (!has(key)) return std::nullopt;
        return integer_value(at(key), key_path(key), min, max);
    }

    std::optional<bool> boolean(const std::string& key) const {
        if (!has(key)) return std::nullopt;
        const json& value = at(key);
        if (!value.is_boolean())
            throw ConfigError(key_path(key), fmt::format("expected true or false, got {}", describe(value)));
        return value.get<bool>();
    }

    std::optional<std::string> string(const std::string& key) const {
        if (!has(key)) return std::nullopt;
        const json& value = at(key);
        if (!value.is_string())
            throw ConfigError(key_path(key), fmt::format("expected a string, got {}", describe(value)));
        return value.get<std::string>();
    }

    // The elements of an array-valued key, each with its own path ("numa.nodes[1]"), or nothing
    // if the key is absent. Throws unless it is an array of min_count..max_count elements.
    struct Element {
        std::string path;
        const json& value;
    };
    std::optional<std::vector<Element>> list(const std::string& key, size_t min_count, size_t max_count) const {
        if (!has(key)) return std::nullopt;
        const json& value = at(key);
        if (!value.is_array())
            throw ConfigError(key_path(key), fmt::format("expected an array, got {}", describe(value)));
        if (value.size() < min_count || value.size() > max_count)
            throw ConfigError(key_path(key), fmt::format("must have {}..{} elements, got {}", min_count, max_count,
                                                         value.size()));
        std::vector<Element> elements;
        for (size_t i = 0; i < value.size(); ++i)
            elements.push_back({fmt::format("{}[{}]", key_path(key), i), value[i]});
        return elements;
    }

    template <typename Enum>
    std::optional<Enum> choice(const std::string& key,
                               const std::vector<std::pair<std::string, Enum>>& options) const {
        auto text = string(key);
        if (!text) return std::nullopt;
        std::string names;
        for (const auto& [name, option] : options) {
            if (name == *text) return option;
            names += (names.empty() ? "" : ", ") + name;
        }
        throw ConfigError(key_path(key), fmt::format("must be one of {}, got \"{}\"", names, *text));
    }

private:
    static std::string unknown_key_message(const std::vector<std::string>& allowed,
                                           const std::string& key) {
        std::string closest;
        size_t best = 3;  // suggest only near misses
        for (const auto& candidate : allowed) {
            size_t distance = edit_distance(key, candidate);
            if (distance < best) best = distance, closest = candidate;
        }
        std::string known;
        for (const auto& candidate : allowed) known += (known.empty() ? "" : ", ") + candidate;
        if (!closest.empty()) return fmt::format("unknown key (did you mean \"{}\"?)", closest);
        return fmt::format("unknown key (known keys: {})", known);
    }

    const json& object_;
    std::string path_;
};

// Where relative paths resolve: the config file's folder, or the current directory for values
// the user typed with --set.
struct PathContext {
    fs::path config_dir;
    std::set<std::string> overridden_keys;

    fs::path resolve(const std::string& key_path, const std::string& value) const {
        fs::path path(value);
        if (path.is_absolute()) return path.lexically_normal();
        fs::path base = overridden_keys.count(key_path) ? fs::current_path() : config_dir;
        return (base / path).lexically_normal();
    }
};

void require_readable_file(const std::string& key_path, const fs::path& path) {
    std::error_code error;
    if (fs::is_directory(path, error))
        throw ConfigError(key_path, fmt::format("{} is a directory, not a file", path.string()));
    if (::access(path.c_str(), R_OK) != 0)
        throw ConfigError(key_path, fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
}

void require_writable_destination(const std::string& key_path, const fs::path& path) {
    std::error_code error;
    if (fs::is_directory(path, error))
        throw ConfigError(key_path, fmt::format("{} is a directory, not a file", path.string()));
    fs::path parent = path.parent_path();
    if (!fs::is_directory(parent, error))
        throw ConfigError(key_path, fmt::format("folder {} does not exist", parent.string()));
    if (fs::exists(path, error) ? ::access(path.c_str(), W_OK) != 0 : ::access(parent.c_str(), W_OK) != 0)
        throw ConfigError(key_path, fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
}

MachineConfig parse_machine(const json& doc) {
    MachineConfig machine;
    if (!doc.contains("machine")) return machine;
    ObjectReader reader(doc.at("machine"), "machine", {"vcpus", "memory_mib", "cpu_mode"});
    if (auto vcpus = reader.integer("vcpus", 1, abi::kMaxVcpus)) machine.vcpus = static_cast<uint32_t>(*vcpus);
    if (auto memory = reader.integer("memory_mib", kMinMemoryMib, kMaxMemoryMib)) {
        if (*memory % 2 != 0)
            throw ConfigError(reader.key_path("memory_mib"),
                              fmt::format("must be a multiple of 2 (guest RAM is mapped in 2 MiB pages), got {}", *memory));
        machine.memory_mib = *memory;
    }
    if (auto mode = reader.choice<CpuMode>("cpu_mode", {{"auto", CpuMode::kAuto},
                                                        {"pvm", CpuMode::kPvm},
                                                        {"classic", CpuMode::kClassic}}))
        machine.cpu_mode = *mode;
    return machine;
}

KernelConfig parse_kernel(const json& doc, const PathContext& paths) {
    if (!doc.contains("kernel")) throw ConfigError("kernel", "missing (the guest kernel to boot)");
    ObjectReader reader(doc.at("kernel"), "kernel", {"path", "cmdline"});
    KernelConfig kernel;
    auto path = reader.string("path");
    if (!path) throw ConfigError("kernel.path", "missing (path of the guest kernel ELF)");
    if (path->empty()) throw ConfigError("kernel.path", "must not be empty");
    kernel.path = paths.resolve("kernel.path", *path);
    require_readable_file("kernel.path", kernel.path);

    kernel.cmdline = reader.string("cmdline").value_or("");
    if (kernel.cmdline.size() > kMaxCmdlineLength)
        throw ConfigError("kernel.cmdline", fmt::format("must be at most {} bytes, got {}",
                                                        kMaxCmdlineLength, kernel.cmdline.size()));
    for (unsigned char c : kernel.cmdline)
        if (c < 0x20 || c > 0x7e)
            throw ConfigError("kernel.cmdline",
                              fmt::format("must be printable ASCII, found byte {:#04x}", c));
    return kernel;
}

ConsoleConfig parse_console(const json& doc, const PathContext& paths) {
    ConsoleConfig console;
    if (!doc.contains("console")) return console;
    ObjectReader reader(doc.at("console"), "console", {"output"});
    auto output = reader.string("output");
    if (!output || *output == "stdout") return console;
    if (output->empty()) throw ConfigError("console.output", "must be \"stdout\" or a file path, got \"\"");
    console.output_file = paths.resolve("console.output", *output);
    require_writable_destination("console.output", console.output_file);
    return console;
}

DiskConfig parse_disk(const json& value, const std::string& path, const PathContext& paths) {
    ObjectReader reader(value, path, {"id", "path", "bus", "read_only", "cache", "size_mib"});
    DiskConfig disk;
    auto id = reader.string("id");
    if (!id) throw ConfigError(reader.key_path("id"), "missing (a name for the disk, e.g. \"system\")");
    if (id->empty() || id->size() > 32 || id->find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        throw ConfigError(reader.key_path("id"), fmt::format("must be 1..32 of a-z, 0-9, '_', '-', got \"{}\"", *id));
    disk.id = *id;
    auto image = reader.string("path");
    if (!image || image->empty()) throw ConfigError(reader.key_path("path"), "missing (the raw disk image)");
    disk.path = paths.resolve(reader.key_path("path"), *image);
    if (auto bus = reader.choice<DiskBus>("bus", {{"vmbus", DiskBus::kVmbus}, {"ide", DiskBus::kIde}})) disk.bus = *bus;
    disk.read_only = reader.boolean("read_only").value_or(false);
    if (auto cache = reader.choice<DiskCache>("cache", {{"none", DiskCache::kNone}, {"writeback", DiskCache::kWriteback}}))
        disk.cache = *cache;
    if (auto size = reader.integer("size_mib", 1, uint64_t{1} << 30)) disk.size_mib = *size;
    return disk;
}

std::vector<DiskConfig> parse_disks(const json& doc, const PathContext& paths) {
    std::vector<DiskConfig> disks;
    if (!doc.contains("disks")) return disks;
    auto elements = [&] {
        const json& value = doc.at("disks");
        if (!value.is_array()) throw ConfigError("disks", fmt::format("expected an array, got {}", describe(value)));
        if (value.size() > kMaxDisks)
            throw ConfigError("disks", fmt::format("must have 0..{} elements, got {}", kMaxDisks, value.size()));
        return value;
    }();
    uint32_t ide = 0;
    for (size_t i = 0; i < elements.size(); ++i) {
        const std::string path = fmt::format("disks[{}]", i);
        DiskConfig disk = parse_disk(elements[i], path, paths);
        for (size_t j = 0; j < disks.size(); ++j) {
            if (disks[j].id == disk.id)
                throw ConfigError(path + ".id", fmt::format("\"{}\" is already the id of disks[{}]", disk.id, j));
            if (disks[j].path == disk.path)
                throw ConfigError(path + ".path", fmt::format("{} is already the image of disks[{}]", disk.path.string(), j));
        }
        if (disk.bus == DiskBus::kIde && ++ide > kMaxIdeDisks)
            throw ConfigError(path + ".bus", fmt::format("at most {} IDE disks (the primary channel's master and slave)", kMaxIdeDisks));
        disks.push_back(std::move(disk));
    }
    return disks;
}

ControlConfig parse_control(const json& doc, const PathContext& paths) {
    ControlConfig control;
    if (!doc.contains("control")) return control;
    ObjectReader reader(doc.at("control"), "control", {"socket"});
    auto socket = reader.string("socket");
    if (!socket) return control;
    if (socket->empty()) throw ConfigError("control.socket", "must be a path, got \"\"");
    control.socket = paths.resolve("control.socket", *socket);
    if (control.socket.string().size() > 107)
        throw ConfigError("control.socket", fmt::format("must be at most 107 bytes (a Unix socket path), got {}",
                                                        control.socket.string().size()));
    require_writable_destination("control.socket", control.socket);
    return control;
}

EnlightenmentsConfig parse_enlightenments(const json& doc) {
    EnlightenmentsConfig enlightenments;
    if (!doc.contains("enlightenments")) return enlightenments;
    ObjectReader reader(doc.at("enlightenments"), "enlightenments", {"spinlock", "spin_count"});
    if (auto spinlock = reader.boolean("spinlock")) enlightenments.spinlock = *spinlock;
    if (auto count = reader.integer("spin_count", 1, kMaxSpinCount)) enlightenments.spin_count = static_cast<uint32_t>(*count);
    return enlightenments;
}

NumaNodeConfig parse_numa_node(const json& value, const std::string& path, uint32_t vcpu_count) {
    ObjectReader reader(value, path, {"vcpus", "memory_mib", "host_node"});
    NumaNodeConfig node;
    if (!reader.has("vcpus")) throw ConfigError(reader.key_path("vcpus"), "missing (the node's vCPU indices)");
    for (uint64_t vcpu : integer_array(reader.at("vcpus"), reader.key_path("vcpus"), 0, vcpu_count - 1, vcpu_count))
        node.vcpus.push_back(static_cast<uint32_t>(vcpu));
    auto memory = reader.integer("memory_mib", 2, kMaxMemoryMib);
    if (!memory) throw ConfigError(reader.key_path("memory_mib"), "missing (the node's RAM in MiB)");
    if (*memory % 2 != 0)
        throw ConfigError(reader.key_path("memory_mib"),
                          fmt::format("must be a multiple of 2 (guest RAM is mapped in 2 MiB pages), got {}", *memory));
    node.memory_mib = *memory;
    if (auto host = reader.integer("host_node", 0, 1023)) node.host_node = static_cast<uint32_t>(*host);
    return node;
}

// Each vCPU in exactly one node; the nodes' RAM adds up to the machine's.
void check_numa_partition(const NumaConfig& numa, const MachineConfig& machine) {
    std::vector<int> owner(machine.vcpus, -1);
    uint64_t memory_mib = 0;
    for (size_t n = 0; n < numa.nodes.size(); ++n) {
        for (uint32_t vcpu : numa.nodes[n].vcpus) {
            if (owner[vcpu] >= 0)
                throw ConfigError(fmt::format("numa.nodes[{}].vcpus", n),
                                  fmt::format("vCPU {} is already in numa.nodes[{}]", vcpu, owner[vcpu]));
            owner[vcpu] = static_cast<int>(n);
        }
        memory_mib += numa.nodes[n].memory_mib;
    }
    for (uint32_t vcpu = 0; vcpu < machine.vcpus; ++vcpu)
        if (owner[vcpu] < 0)
            throw ConfigError("numa.nodes", fmt::format("vCPU {} is in no node (every vCPU of machine.vcpus={} must be)",
                                                        vcpu, machine.vcpus));
    if (memory_mib != machine.memory_mib)
        throw ConfigError("numa.nodes", fmt::format("the nodes' memory_mib add up to {}, but machine.memory_mib is {}",
                                                    memory_mib, machine.memory_mib));
}

// A square matrix with SLIT semantics (numa/distance.h: 10 on the diagonal, 11..254 remote, 255
// unreachable), symmetric unless `asymmetric` says otherwise. Absent: 10 local, 20 remote.
std::vector<std::vector<uint32_t>> parse_distances(const ObjectReader& reader, size_t node_count, bool asymmetric) {
    std::vector<std::vector<uint32_t>> distances(node_count, std::vector<uint32_t>(node_count, kDefaultRemoteDistance));
    for (size_t i = 0; i < node_count; ++i) distances[i][i] = numa::kLocalDistance;
    auto rows = reader.list("distances", node_count, node_count);
    if (!rows) return distances;
    numa::DistanceMatrix matrix;
    for (size_t i = 0; i < node_count; ++i) {
        const auto& row = (*rows)[i];
        const auto values = integer_array(row.value, row.path, 0, numa::kUnreachableDistance, node_count);
        if (values.size() != node_count)
            throw ConfigError(row.path, fmt::format("must have {} elements (one per node), got {}", node_count, values.size()));
        for (size_t j = 0; j < node_count; ++j) {
            distances[i][j] = static_cast<uint32_t>(values[j]);
            matrix.set(static_cast<uint32_t>(i), static_cast<uint32_t>(j), static_cast<uint8_t>(values[j]));
        }
    }
    const numa::DistanceCheck check = numa::check_distances(
        matrix, static_cast<uint32_t>(node_count), asymmetric ? numa::Symmetry::kAllowed : numa::Symmetry::kRequired);
    if (!check.ok()) {
        std::string problem = fmt::format("{}, got {}", numa::explain(check.problem), distances[check.row][check.column]);
        if (check.problem == numa::DistanceProblem::kAsymmetric)
            problem += fmt::format(" against numa.distances[{}][{}] = {} (set numa.asymmetric=true if that is intended)",
                                   check.column, check.row, distances[check.column][check.row]);
        throw ConfigError(fmt::format("numa.distances[{}][{}]", check.row, check.column), problem);
    }
    return distances;
}

NumaConfig parse_numa(const json& doc, const MachineConfig& machine) {
    NumaConfig numa;
    if (!doc.contains("numa")) return numa;
    ObjectReader reader(doc.at("numa"), "numa", {"nodes", "distances", "asymmetric", "pin_vcpus"});
    auto nodes = reader.list("nodes", 1, numa::kMaxNodes);
    if (!nodes) throw ConfigError("numa.nodes", "missing (one object per virtual NUMA node)");
    for (const auto& node : *nodes) numa.nodes.push_back(parse_numa_node(node.value, node.path, machine.vcpus));
    check_numa_partition(numa, machine);
    numa.distances = parse_distances(reader, numa.nodes.size(), reader.boolean("asymmetric").value_or(false));
    numa.pin_vcpus = reader.boolean("pin_vcpus").value_or(false);
    if (numa.pin_vcpus) {
        for (size_t n = 0; n < numa.nodes.size(); ++n)
            if (!numa.nodes[n].vcpus.empty() && !numa.nodes[n].host_node)
                throw ConfigError("numa.pin_vcpus",
                                  fmt::format("numa.nodes[{}] has vCPUs but no host_node whose CPUs they could be pinned to", n));
    }
    return numa;
}

VmbusConfig parse_vmbus(const json& doc) {
    VmbusConfig vmbus;
    if (!doc.contains("vmbus")) return vmbus;
    ObjectReader reader(doc.at("vmbus"), "vmbus", {"enabled", "shutdown_timeout_ms", "poll_window_us", "root_cpus"});
    vmbus.enabled = reader.boolean("enabled").value_or(true);
    if (auto timeout = reader.integer("shutdown_timeout_ms", 0, 600'000))
        vmbus.shutdown_timeout_ms = static_cast<uint32_t>(*timeout);
    // The root partition's event loop serves every channel: a window stalls the others that long.
    if (auto window = reader.integer("poll_window_us", 0, kMaxPollWindowUs))
        vmbus.poll_window_us = static_cast<uint32_t>(*window);
    if (reader.has("root_cpus")) {
        const std::string path = reader.key_path("root_cpus");
        for (uint64_t cpu : integer_array(reader.at("root_cpus"), path, 0, CPU_SETSIZE - 1, CPU_SETSIZE)) {
            if (std::find(vmbus.root_cpus.begin(), vmbus.root_cpus.end(), cpu) != vmbus.root_cpus.end())
                throw ConfigError(path, fmt::format("names CPU {} twice", cpu));
            vmbus.root_cpus.push_back(static_cast<uint32_t>(cpu));
        }
    }
    return vmbus;
}

// UTF-16 units of `text` as the KVP wire carries it, or nullopt if it is not valid UTF-8 without
// NUL or needs more than `max_units`.
std::optional<uint32_t> kvp_fits(const std::string& text, uint32_t max_units) {
    namespace ic = vmbus::services::ic;
    std::vector<uint8_t> utf16((max_units + 1) * 2);
    const uint32_t bytes = ic::utf8_to_utf16(text.data(), static_cast<uint32_t>(text.size()), utf16.data(),
                                             static_cast<uint32_t>(utf16.size()));
    if (bytes == 0) return std::nullopt;
    return bytes / 2 - 1;
}

KvpConfig parse_kvp(const json& doc) {
    namespace ic = vmbus::services::ic;
    KvpConfig kvp;
    if (!doc.contains("kvp")) return kvp;
    const json& object = doc.at("kvp");
    if (!object.is_object())
        throw ConfigError("kvp", fmt::format("expected an object of string values, got {}", describe(object)));
    if (object.size() > kMaxKvpPairs)
        throw ConfigError("kvp", fmt::format("must have at most {} pairs, got {}", kMaxKvpPairs, object.size()));
    for (const auto& [key, value] : object.items()) {
        const std::string path = join_path("kvp", key);
        if (key.empty() || !kvp_fits(key, ic::kKvpMaxKeyUnits))
            throw ConfigError(path, fmt::format("a key must be 1..{} UTF-16 characters without NUL", ic::kKvpMaxKeyUnits));
        if (!value.is_string()) throw ConfigError(path, fmt::format("expected a string, got {}", describe(value)));
        const std::string text = value.get<std::string>();
        if (!kvp_fits(text, ic::kKvpMaxValueUnits))
            throw ConfigError(path, fmt::format("a value must be at most {} UTF-16 characters without NUL",
                                                ic::kKvpMaxValueUnits));
        kvp[key] = text;
    }
    return kvp;
}

DiskFaultConfig parse_disk_fault(const json& value, const std::vector<DiskConfig>& disks) {
    ObjectReader reader(value, "debug.disk_fault", {"disk", "operation", "nth", "count", "error"});
    DiskFaultConfig config;
    auto disk = reader.string("disk");
    if (!disk) throw ConfigError(reader.key_path("disk"), "missing (the id of the disk whose I/O fails)");
    if (std::none_of(disks.begin(), disks.end(), [&](const DiskConfig& d) { return d.id == *disk; }))
        throw ConfigError(reader.key_path("disk"), fmt::format("\"{}\" is not the id of a disk in disks[]", *disk));
    config.disk = *disk;
    using storage::FaultEffect;
    using storage::FaultOperation;
    auto operation = reader.choice<FaultOperation>(
        "operation", {{"read", FaultOperation::kRead}, {"write", FaultOperation::kWrite}, {"flush", FaultOperation::kFlush},
                      {"unmap", FaultOperation::kUnmap}});
    if (!operation) throw ConfigError(reader.key_path("operation"), "missing (read, write, flush or unmap)");
    config.fault.operation = *operation;
    auto effect = reader.choice<FaultEffect>("error", {{"eio", FaultEffect::kEio}, {"enospc", FaultEffect::kEnospc},
                                                        {"short", FaultEffect::kShortTransfer}});
    if (!effect) throw ConfigError(reader.key_path("error"), "missing (eio, enospc or short)");
    if (*effect == FaultEffect::kShortTransfer && *operation != FaultOperation::kRead && *operation != FaultOperation::kWrite)
        throw ConfigError(reader.key_path("error"), "\"short\" needs operation read or write (only they move data)");
    config.fault.effect = *effect;
    config.fault.nth = reader.integer("nth", 1, uint64_t{1} << 40).value_or(1);
    config.fault.count = static_cast<uint32_t>(reader.integer("count", 1, uint64_t{1} << 20).value_or(1));
    return config;
}

DebugConfig parse_debug(const json& doc, const std::vector<DiskConfig>& disks) {
    DebugConfig debug;
    if (!doc.contains("debug")) return debug;
    ObjectReader reader(doc.at("debug"), "debug",
                        {"interrupt_generator", "synic_echo", "root_partition_fault", "corrupt_acpi_table", "disk_fault"});
    debug.interrupt_generator = reader.boolean("interrupt_generator").value_or(false);
    debug.synic_echo = reader.boolean("synic_echo").value_or(false);
    if (auto fault = reader.choice<RootPartitionFault>("root_partition_fault",
                                                        {{"none", RootPartitionFault::kNone},
                                                         {"forbidden-syscall", RootPartitionFault::kForbiddenSyscall},
                                                         {"crash", RootPartitionFault::kCrash},
                                                         {"hang", RootPartitionFault::kHang}}))
        debug.root_partition_fault = *fault;
    if (auto table = reader.string("corrupt_acpi_table")) {
        if (std::find(kAcpiTableSignatures.begin(), kAcpiTableSignatures.end(), *table) == kAcpiTableSignatures.end()) {
            std::string names;
            for (const std::string& name : kAcpiTableSignatures) names += (names.empty() ? "\"" : ", \"") + name + "\"";
            throw ConfigError("debug.corrupt_acpi_table", fmt::format("must be one of {}, got \"{}\"", names, *table));
        }
        debug.corrupt_acpi_table = *table;
    }
    if (reader.has("disk_fault")) debug.disk_fault = parse_disk_fault(reader.at("disk_fault"), disks);
    return debug;
}

// One step of an override path: an object key, or an array index ("nodes[1]" is two steps).
struct PathStep {
    std::string key;    // empty for an index
    size_t index = 0;
};

// Splits "numa.nodes[1].vcpus" into steps; throws for empty keys or malformed indices.
std::vector<PathStep> parse_override_path(const std::string& assignment, const std::string& key_path) {
    std::vector<PathStep> steps;
    size_t i = 0;
    auto fail = [&](const std::string& why) {
        throw ConfigError("", fmt::format("--set {}: {} in \"{}\"", assignment, why, key_path));
    };
    while (i < key_path.size()) {
        const size_t end = key_path.find_first_of(".[", i);
        const std::string key = key_path.substr(i, end == std::string::npos ? std::string::npos : end - i);
        if (key.empty()) fail("empty key");
        steps.push_back({key, 0});
        i = end == std::string::npos ? key_path.size() : end;
        while (i < key_path.size() && key_path[i] == '[') {
            const size_t close = key_path.find(']', i);
            const std::string digits = key_path.substr(i + 1, close == std::string::npos ? 0 : close - i - 1);
            if (close == std::string::npos || digits.empty() || digits.size() > 6 ||
                digits.find_first_not_of("0123456789") != std::string::npos)
                fail("malformed array index");
            steps.push_back({"", std::stoul(digits)});
            i = close + 1;
        }
        if (i < key_path.size()) {
            if (key_path[i] != '.') fail("expected '.' or '['");
            if (++i == key_path.size()) fail("empty key");
        }
    }
    return steps;
}

std::string describe_step(const std::string& walked, const PathStep& step) {
    return step.key.empty() ? fmt::format("{}[{}]", walked, step.index) : join_path(walked, step.key);
}

// Sets doc[a][b][c] = value for "a.b.c=value". The value is JSON if it parses as JSON
// (numbers, booleans, quoted strings), otherwise the raw text as a string.
std::string apply_override(json& doc, const std::string& assignment) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0)
        throw ConfigError("", fmt::format("--set {}: expected dotted.key=value", assignment));
    const std::string key_path = assignment.substr(0, equals);
    const std::string text = assignment.substr(equals + 1);

    const std::vector<PathStep> steps = parse_override_path(assignment, key_path);
    json* node = &doc;
    std::string walked;
    for (size_t i = 0; i < steps.size(); ++i) {
        const PathStep& step = steps[i];
        const bool last = i + 1 == steps.size();
        if (step.key.empty()) {
            // An index may name an existing element or the one just past the end (appending).
            if (node->is_null()) *node = json::array();
            if (!node->is_array())
                throw ConfigError(walked, fmt::format("--set {}: {} is {}, not an array", assignment, walked, describe(*node)));
            if (step.index > node->size())
                throw ConfigError(walked, fmt::format("--set {}: {} has {} elements; index {} would leave a gap",
                                                      assignment, walked, node->size(), step.index));
            if (step.index == node->size()) node->push_back(nullptr);
            node = &(*node)[step.index];
        } else {
            if (node->is_null()) *node = json::object();
            if (!node->is_object())
                throw ConfigError(walked, fmt::format("--set {}: {} is {}, not an object", assignment, walked, describe(*node)));
            node = &(*node)[step.key];
        }
        walked = describe_step(walked, step);
        if (last) {
            json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
            *node = value.is_discarded() ? json(text) : value;
        }
    }
    return key_path;
}

std::string describe_parse_error(const std::string& text, const json::parse_error& error) {
    // Turn the byte offset into line:column, which is what an editor shows.
    size_t line = 1, column = 1;
    for (size_t i = 0; i + 1 < error.byte && i < text.size(); ++i) {
        if (text[i] == '\n') ++line, column = 1;
        else ++column;
    }
    std::string what = error.what();
    const auto detail = what.find("syntax error");
    return fmt::format("line {}, column {}: {}", line, column,
                       detail == std::string::npos ? what : what.substr(detail));
}

}  // namespace

const char* to_string(CpuMode mode) {
    switch (mode) {
    case CpuMode::kAuto: return "auto";
    case CpuMode::kPvm: return "pvm";
    case CpuMode::kClassic: return "classic";
    }
    return "?";
}

VmConfig parse_config(const std::string& json_text, const fs::path& config_dir,
                      const std::vector<std::string>& overrides) {
    json doc;
    try {
        doc = json::parse(json_text);
    } catch (const json::parse_error& error) {
        throw ConfigError("", describe_parse_error(json_text, error));
    }
    if (!doc.is_object()) throw ConfigError("", fmt::format("expected a JSON object at the top level, got {}", describe(doc)));

    PathContext paths{config_dir, {}};
    for (const auto& assignment : overrides) paths.overridden_keys.insert(apply_override(doc, assignment));

    ObjectReader top(doc, "", {"machine", "kernel", "console", "control", "disks", "enlightenments", "numa", "vmbus", "kvp", "debug"});
    VmConfig config;
    config.machine = parse_machine(doc);
    config.kernel = parse_kernel(doc, paths);
    config.console = parse_console(doc, paths);
    config.control = parse_control(doc, paths);
    config.disks = parse_disks(doc, paths);
    config.enlightenments = parse_enlightenments(doc);
    config.numa = parse_numa(doc, config.machine);
    config.vmbus = parse_vmbus(doc);
    config.kvp = parse_kvp(doc);
    config.debug = parse_debug(doc, config.disks);
    return config;
}

VmConfig load_config(const fs::path& file, const std::vector<std::string>& overrides) {
    std::error_code error;
    if (fs::is_directory(file, error))
        throw ConfigError("", fmt::format("{} is a directory, not a config file", file.string()));
    std::ifstream stream(file, std::ios::binary);
    if (!stream) throw ConfigError("", fmt::format("cannot read {}: {}", file.string(), std::strerror(errno)));
    std::stringstream text;
    text << stream.rdbuf();
    fs::path dir = fs::absolute(file, error).parent_path();
    return parse_config(text.str(), dir, overrides);
}

}  // namespace hvkvm::vmm
