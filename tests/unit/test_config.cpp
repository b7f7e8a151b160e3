#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/config.h"
#include "temp_dir.h"

using hvkvm::test::TempDir;
using namespace hvkvm::vmm;

namespace {

// Parses `json` in a folder holding a readable "kernel.elf"; returns the error message, or "" if
// the config is valid.
std::string error_of(const std::string& json, const std::vector<std::string>& overrides = {}) {
    TempDir dir;
    dir.write("kernel.elf", "not checked here");
    try {
        parse_config(json, dir.path(), overrides);
        return "";
    } catch (const ConfigError& error) {
        return error.what();
    }
}

const std::string kMinimal = R"({"kernel": {"path": "kernel.elf"}})";

}  // namespace

TEST_CASE("a minimal config gets the documented defaults", "[config]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(kMinimal, dir.path());
    CHECK(config.machine.vcpus == 1);
    CHECK(config.machine.memory_mib == 256);
    CHECK(config.machine.cpu_mode == CpuMode::kAuto);
    CHECK(config.kernel.path == dir.path() / "kernel.elf");
    CHECK(config.kernel.cmdline.empty());
    CHECK(config.console.to_stdout());
}

TEST_CASE("every key is read", "[config]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(R"({
        "machine": {"vcpus": 8, "memory_mib": 1024, "cpu_mode": "classic"},
        "kernel": {"path": "kernel.elf", "cmdline": "test=* quiet"},
        "console": {"output": "console.log"}})", dir.path());
    CHECK(config.machine.vcpus == 8);
    CHECK(config.machine.memory_mib == 1024);
    CHECK(config.machine.cpu_mode == CpuMode::kClassic);
    CHECK(config.kernel.cmdline == "test=* quiet");
    CHECK(config.console.output_file == dir.path() / "console.log");
}

TEST_CASE("invalid values are rejected with the key path", "[config]") {
    struct Case {
        const char* json;
        const char* message;
    };
    const Case cases[] = {
        {R"({"machine": {"vcpus": 0}, "kernel": {"path": "kernel.elf"}})", "machine.vcpus: must be 1..64, got 0"},
        {R"({"machine": {"vcpus": 65}, "kernel": {"path": "kernel.elf"}})", "machine.vcpus: must be 1..64, got 65"},
        {R"({"machine": {"vcpus": -3}, "kernel": {"path": "kernel.elf"}})", "machine.vcpus: must be 1..64, got -3"},
        {R"({"machine": {"vcpus": "4"}, "kernel": {"path": "kernel.elf"}})",
         "machine.vcpus: must be 1..64, got string \"4\""},
        {R"({"machine": {"vcpus": 2.5}, "kernel": {"path": "kernel.elf"}})", "machine.vcpus: must be 1..64, got number 2.5"},
        {R"({"machine": {"vcpus": true}, "kernel": {"path": "kernel.elf"}})",
         "machine.vcpus: must be 1..64, got boolean true"},
        {R"({"machine": {"vcpus": null}, "kernel": {"path": "kernel.elf"}})", "machine.vcpus: must be 1..64, got null"},
        {R"({"machine": {"memory_mib": 8}, "kernel": {"path": "kernel.elf"}})",
         "machine.memory_mib: must be 16..65536, got 8"},
        {R"({"machine": {"memory_mib": 99}, "kernel": {"path": "kernel.elf"}})",
         "machine.memory_mib: must be a multiple of 2 (guest RAM is mapped in 2 MiB pages), got 99"},
        {R"({"machine": {"memory_mib": 18446744073709551615}, "kernel": {"path": "kernel.elf"}})",
         "machine.memory_mib: must be 16..65536, got 18446744073709551615"},
        {R"({"machine": {"cpu_mode": "vmx"}, "kernel": {"path": "kernel.elf"}})",
         "machine.cpu_mode: must be one of auto, pvm, classic, got \"vmx\""},
        {R"({"machine": {"cpu_mode": 1}, "kernel": {"path": "kernel.elf"}})",
         "machine.cpu_mode: expected a string, got integer 1"},
        {R"({"machine": {"vcpu": 2}, "kernel": {"path": "kernel.elf"}})",
         "machine.vcpu: unknown key (did you mean \"vcpus\"?)"},
        {R"({"machine": {"colour": 2}, "kernel": {"path": "kernel.elf"}})",
         "machine.colour: unknown key (known keys: vcpus, memory_mib, cpu_mode)"},
        {R"({"machine": [], "kernel": {"path": "kernel.elf"}})", "machine: expected an object, got an array"},
        {R"({"kernel": {"path": "kernel.elf"}, "extra": {}})",
         "extra: unknown key (known keys: machine, kernel, console, control, disks, enlightenments, numa, vmbus, kvp, debug)"},
        {R"({"kernal": {"path": "kernel.elf"}})", "kernal: unknown key (did you mean \"kernel\"?)"},
        {R"({})", "kernel: missing (the guest kernel to boot)"},
        {R"({"kernel": {}})", "kernel.path: missing (path of the guest kernel ELF)"},
        {R"({"kernel": {"path": ""}})", "kernel.path: must not be empty"},
        {R"({"kernel": {"path": 7}})", "kernel.path: expected a string, got integer 7"},
        {R"({"kernel": {"path": "kernel.elf", "cmdline": ["a"]}})", "kernel.cmdline: expected a string, got an array"},
        {R"({"kernel": {"path": "kernel.elf", "cmdline": "tab\there"}})",
         "kernel.cmdline: must be printable ASCII, found byte 0x09"},
        {R"({"kernel": {"path": "kernel.elf"}, "console": {"output": ""}})",
         "console.output: must be \"stdout\" or a file path, got \"\""},
        {R"({"kernel": {"path": "kernel.elf"}, "console": {"file": "x"}})",
         "console.file: unknown key (known keys: output)"},
        {R"({"kernel": {"path": "kernel.elf"}, "console": "stdout"})",
         "console: expected an object, got string \"stdout\""},
        {R"([1, 2])", "expected a JSON object at the top level, got an array"},
    };
    for (const Case& c : cases) {
        INFO(c.json);
        CHECK(error_of(c.json) == c.message);
    }
}

TEST_CASE("enlightenments are configurable", "[config]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig defaults = parse_config(kMinimal, dir.path());
    CHECK(defaults.enlightenments.spinlock);
    CHECK(defaults.enlightenments.spin_count == 4095);
    const VmConfig set = parse_config(
        R"({"kernel": {"path": "kernel.elf"}, "enlightenments": {"spinlock": false, "spin_count": 100}})", dir.path());
    CHECK_FALSE(set.enlightenments.spinlock);
    CHECK(set.enlightenments.spin_count == 100);
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "enlightenments": {"spinlock": "yes"}})") ==
          "enlightenments.spinlock: expected true or false, got string \"yes\"");
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "enlightenments": {"spin_count": 0}})") ==
          "enlightenments.spin_count: must be 1..1073741824, got 0");
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "enlightenments": {"spincount": 5}})") ==
          "enlightenments.spincount: unknown key (did you mean \"spin_count\"?)");
}

TEST_CASE("the command line: 4095 bytes fit, 4096 do not", "[config]") {
    auto with_cmdline = [](const std::string& text) {
        return R"({"kernel": {"path": "kernel.elf", "cmdline": ")" + text + "\"}}";
    };
    CHECK(error_of(with_cmdline(std::string(4095, 'a'))).empty());
    CHECK(error_of(with_cmdline(std::string(4096, 'a'))) == "kernel.cmdline: must be at most 4095 bytes, got 4096");
}

TEST_CASE("the command line: every printable ASCII character and nothing else", "[config]") {
    auto error_for = [](unsigned char c) {
        return error_of(kMinimal, {std::string("kernel.cmdline=a") + static_cast<char>(c) + "b"});
    };
    // The edges of each class: control characters, the printable range, DEL, and bytes >= 0x80.
    CHECK(error_for(0x01) == "kernel.cmdline: must be printable ASCII, found byte 0x01");
    CHECK(error_for(0x1f) == "kernel.cmdline: must be printable ASCII, found byte 0x1f");
    CHECK(error_for(0x20).empty());
    CHECK(error_for('=').empty());
    CHECK(error_for(0x7e).empty());
    CHECK(error_for(0x7f) == "kernel.cmdline: must be printable ASCII, found byte 0x7f");
    CHECK(error_for(0x80) == "kernel.cmdline: must be printable ASCII, found byte 0x80");
    CHECK(error_for(0xff) == "kernel.cmdline: must be printable ASCII, found byte 0xff");
    for (unsigned c = 0x20; c <= 0x7e; ++c) {
        if (c == '"' || c == '\\') continue;  // JSON syntax in the --set value: tested as JSON strings elsewhere
        INFO("byte " << c);
        CHECK(error_for(static_cast<unsigned char>(c)).empty());
    }
}

TEST_CASE("JSON syntax errors give line and column", "[config]") {
    const std::string message = error_of("{\n  \"kernel\": {\"path\": \"kernel.elf\",}\n}");
    CHECK_THAT(message, Catch::StartsWith("line 2, column 35: syntax error"));
    CHECK_THAT(error_of(""), Catch::Contains("syntax error"));
}

TEST_CASE("files that cannot be read are named", "[config]") {
    CHECK_THAT(error_of(R"({"kernel": {"path": "missing.elf"}})"),
               Catch::StartsWith("kernel.path: cannot read ") && Catch::EndsWith("missing.elf: No such file or directory"));
    CHECK_THAT(error_of(R"({"kernel": {"path": "."}})"), Catch::Contains("is a directory, not a file"));
    CHECK_THAT(error_of(R"({"kernel": {"path": "kernel.elf"}, "console": {"output": "no/such/dir/log"}})"),
               Catch::StartsWith("console.output: folder ") && Catch::EndsWith("does not exist"));
    CHECK_THAT(error_of(R"({"kernel": {"path": "kernel.elf"}, "console": {"output": "."}})"),
               Catch::Contains("is a directory, not a file"));
}

TEST_CASE("load_config reports unreadable config files", "[config]") {
    CHECK_THROWS_WITH(load_config("/nonexistent/config.json", {}),
                      "cannot read /nonexistent/config.json: No such file or directory");
    TempDir dir;
    CHECK_THROWS_WITH(load_config(dir.path(), {}), Catch::Contains("is a directory, not a config file"));
}

TEST_CASE("overrides (--set) replace keys, typed as JSON when possible", "[config]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(kMinimal, dir.path(),
                                         {"machine.vcpus=4", "kernel.cmdline=test=sched.* verbose",
                                          "machine.cpu_mode=classic", "machine.memory_mib=512"});
    CHECK(config.machine.vcpus == 4);
    CHECK(config.machine.memory_mib == 512);
    CHECK(config.machine.cpu_mode == CpuMode::kClassic);
    CHECK(config.kernel.cmdline == "test=sched.* verbose");
}

TEST_CASE("overridden values are validated like file values", "[config]") {
    CHECK(error_of(kMinimal, {"machine.vcpus=0"}) == "machine.vcpus: must be 1..64, got 0");
    CHECK(error_of(kMinimal, {"machine.vcpus=four"}) == "machine.vcpus: must be 1..64, got string \"four\"");
    CHECK(error_of(kMinimal, {"machine.vcpu=2"}) == "machine.vcpu: unknown key (did you mean \"vcpus\"?)");
    CHECK(error_of(kMinimal, {"kernel.path.x=1"}) ==
          "kernel.path: --set kernel.path.x=1: kernel.path is string \"kernel.elf\", not an object");
    CHECK(error_of(kMinimal, {"novalue"}) == "--set novalue: expected dotted.key=value");
    CHECK(error_of(kMinimal, {"=3"}) == "--set =3: expected dotted.key=value");
    CHECK(error_of(kMinimal, {"machine..vcpus=3"}) == "--set machine..vcpus=3: empty key in \"machine..vcpus\"");
}

namespace {

const std::string kTwoNodes = R"({
    "machine": {"vcpus": 4, "memory_mib": 512},
    "kernel": {"path": "kernel.elf"},
    "numa": {"nodes": [{"vcpus": [0, 1], "memory_mib": 256, "host_node": 0},
                       {"vcpus": [2, 3], "memory_mib": 256}]}})";

}  // namespace

TEST_CASE("numa.nodes is a list of objects, read element by element", "[config][numa]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(kTwoNodes, dir.path());
    REQUIRE(config.numa.nodes.size() == 2);
    CHECK(config.numa.nodes[0].vcpus == std::vector<uint32_t>{0, 1});
    CHECK(config.numa.nodes[0].host_node == 0u);
    CHECK_FALSE(config.numa.nodes[1].host_node);
    CHECK(config.numa.nodes[1].memory_mib == 256);
    // Without a matrix: 10 local, 20 remote.
    CHECK(config.numa.distances == std::vector<std::vector<uint32_t>>{{10, 20}, {20, 10}});
    CHECK_FALSE(parse_config(kMinimal, dir.path()).numa.enabled());
}

TEST_CASE("errors in a list name the element", "[config][numa]") {
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].memory_mib=255"}) ==
          "numa.nodes[1].memory_mib: must be a multiple of 2 (guest RAM is mapped in 2 MiB pages), got 255");
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].vcpus=[2, 4]"}) == "numa.nodes[1].vcpus[1]: must be 0..3, got 4");
    CHECK(error_of(kTwoNodes, {"numa.nodes[0].colour=1"}) ==
          "numa.nodes[0].colour: unknown key (known keys: vcpus, memory_mib, host_node)");
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].vcpus=[1, 2, 3]"}) == "numa.nodes[1].vcpus: vCPU 1 is already in numa.nodes[0]");
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].vcpus=[2]"}) ==
          "numa.nodes: vCPU 3 is in no node (every vCPU of machine.vcpus=4 must be)");
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].memory_mib=128"}) ==
          "numa.nodes: the nodes' memory_mib add up to 384, but machine.memory_mib is 512");
    CHECK(error_of(kTwoNodes, {"numa.nodes[1]=3"}) == "numa.nodes[1]: expected an object, got integer 3");
    CHECK(error_of(kTwoNodes, {"numa.nodes=[]"}) == "numa.nodes: must have 1..16 elements, got 0");
    CHECK(error_of(kTwoNodes, {"numa.nodes[0].vcpus=\"0\""}) ==
          "numa.nodes[0].vcpus: expected an array of integers, got string \"0\"");
}

TEST_CASE("overrides reach into lists by index (--set a[1].b=v), and append at the end", "[config][numa]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(kTwoNodes, dir.path(),
                                         {"numa.nodes[1].host_node=0", "machine.vcpus=5", "machine.memory_mib=640",
                                          "numa.nodes[2].vcpus=[4]", "numa.nodes[2].memory_mib=128"});
    REQUIRE(config.numa.nodes.size() == 3);
    CHECK(config.numa.nodes[1].host_node == 0u);
    CHECK(config.numa.nodes[2].vcpus == std::vector<uint32_t>{4});
    CHECK(error_of(kTwoNodes, {"numa.nodes[3].memory_mib=2"}) ==
          "numa.nodes: --set numa.nodes[3].memory_mib=2: numa.nodes has 2 elements; index 3 would leave a gap");
    CHECK(error_of(kTwoNodes, {"machine[0]=1"}) == "machine: --set machine[0]=1: machine is an object, not an array");
    CHECK(error_of(kMinimal, {"numa.nodes[x]=1"}) == "--set numa.nodes[x]=1: malformed array index in \"numa.nodes[x]\"");
    CHECK(error_of(kMinimal, {"numa.nodes[1=1"}) == "--set numa.nodes[1=1: malformed array index in \"numa.nodes[1\"");
    CHECK(error_of(kMinimal, {"numa.nodes[0]x=1"}) == "--set numa.nodes[0]x=1: expected '.' or '[' in \"numa.nodes[0]x\"");
    CHECK(error_of(kMinimal, {"numa.=1"}) == "--set numa.=1: empty key in \"numa.\"");
}

TEST_CASE("the NUMA distance matrix follows SLIT rules", "[config][numa]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(kTwoNodes, dir.path(), {"numa.distances=[[10, 255], [255, 10]]"});
    CHECK(config.numa.distances[0][1] == 255);
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 20], [20, 11]]"}) ==
          "numa.distances[1][1]: must be 10, the distance from a node to itself, got 11");
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 11], [11, 10]]"}).empty());   // the nearest remote distance
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 10], [10, 10]]"}) ==
          "numa.distances[0][1]: 10 means local; remote is 11..254, unreachable 255, got 10");
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 9], [9, 10]]"}) ==
          "numa.distances[0][1]: 0..9 are reserved; remote is 11..254, unreachable 255, got 9");
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 256], [256, 10]]"}) == "numa.distances[0][1]: must be 0..255, got 256");
    CHECK_THAT(error_of(kTwoNodes, {"numa.distances=[[10, 20], [30, 10]]"}),
               Catch::EndsWith("(set numa.asymmetric=true if that is intended)") &&
                   Catch::Contains("differs from the mirrored entry"));
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 20], [30, 10]]", "numa.asymmetric=true"}).empty());
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 20]]"}) == "numa.distances: must have 2..2 elements, got 1");
    CHECK(error_of(kTwoNodes, {"numa.distances=[[10, 20], [20]]"}) ==
          "numa.distances[1]: must have 2 elements (one per node), got 1");
}

TEST_CASE("numa.pin_vcpus needs a host node for every node with vCPUs", "[config][numa]") {
    CHECK(error_of(kTwoNodes, {"numa.pin_vcpus=true"}) ==
          "numa.pin_vcpus: numa.nodes[1] has vCPUs but no host_node whose CPUs they could be pinned to");
    CHECK(error_of(kTwoNodes, {"numa.pin_vcpus=true", "numa.nodes[1].host_node=0"}).empty());
    // A node without vCPUs has nothing to pin.
    CHECK(error_of(kTwoNodes, {"numa.pin_vcpus=true", "numa.nodes[0].vcpus=[0, 1, 2, 3]", "numa.nodes[1].vcpus=[]"})
              .empty());
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].host_node=1023"}).empty());
    CHECK(error_of(kTwoNodes, {"numa.nodes[1].host_node=1024"}) == "numa.nodes[1].host_node: must be 0..1023, got 1024");
}

TEST_CASE("debug.corrupt_acpi_table names one of the VMM's tables", "[config][numa]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    CHECK(parse_config(kMinimal, dir.path()).debug.corrupt_acpi_table.empty());
    for (const std::string& table : kAcpiTableSignatures)
        CHECK(parse_config(kMinimal, dir.path(), {"debug.corrupt_acpi_table=" + table}).debug.corrupt_acpi_table == table);
    CHECK(error_of(kMinimal, {"debug.corrupt_acpi_table=DSDT"}) ==
          "debug.corrupt_acpi_table: must be one of \"RSD PTR \", \"XSDT\", \"APIC\", \"SRAT\", \"SLIT\", got \"DSDT\"");
}

TEST_CASE("relative paths: config folder for file values, current directory for --set", "[config]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig from_file = parse_config(R"({"kernel": {"path": "kernel.elf"}, "console": {"output": "out.log"}})",
                                            dir.path());
    CHECK(from_file.console.output_file == dir.path() / "out.log");
    const VmConfig from_cli = parse_config(kMinimal, dir.path(), {"console.output=out.log"});
    CHECK(from_cli.console.output_file == (std::filesystem::current_path() / "out.log").lexically_normal());
}

// --- disks[], control, vmbus and the debug faults ------------------------------------------------

namespace {

// A config with `count` disks "d0".."dN" on images "dN.img" (not opened here: disk_image does
// that), each with `extra` JSON members.
std::string with_disks(uint32_t count, const std::string& extra = "") {
    std::string disks;
    for (uint32_t i = 0; i < count; ++i)
        disks += fmt::format(R"({}{{"id": "d{}", "path": "d{}.img"{}}})", i ? ", " : "", i, i, extra);
    return R"({"kernel": {"path": "kernel.elf"}, "disks": [)" + disks + "]}";
}

}  // namespace

TEST_CASE("disks[]: every key is read, with defaults", "[config][disks]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig config = parse_config(R"({"kernel": {"path": "kernel.elf"}, "disks": [
        {"id": "system", "path": "system.img"},
        {"id": "data_1", "path": "/abs/data.img", "bus": "ide", "read_only": true, "cache": "writeback", "size_mib": 64}]})",
                                         dir.path());
    REQUIRE(config.disks.size() == 2);
    CHECK(config.disks[0].id == "system");
    CHECK(config.disks[0].path == dir.path() / "system.img");
    CHECK(config.disks[0].bus == DiskBus::kVmbus);
    CHECK_FALSE(config.disks[0].read_only);
    CHECK(config.disks[0].cache == DiskCache::kNone);
    CHECK_FALSE(config.disks[0].size_mib);
    CHECK(config.disks[1].path == "/abs/data.img");
    CHECK(config.disks[1].bus == DiskBus::kIde);
    CHECK(config.disks[1].read_only);
    CHECK(config.disks[1].cache == DiskCache::kWriteback);
    CHECK(config.disks[1].size_mib == 64u);
    CHECK(parse_config(kMinimal, dir.path()).disks.empty());
}

TEST_CASE("disks[]: 16 disks fit, 17 do not; 2 IDE disks fit, 3 do not", "[config][disks]") {
    CHECK(error_of(with_disks(kMaxDisks)).empty());
    CHECK(error_of(with_disks(kMaxDisks + 1)) == "disks: must have 0..16 elements, got 17");
    CHECK(error_of(with_disks(2, R"(, "bus": "ide")")).empty());
    CHECK(error_of(with_disks(3, R"(, "bus": "ide")")) ==
          "disks[2].bus: at most 2 IDE disks (the primary channel's master and slave)");
}

TEST_CASE("disks[]: ids are 1..32 of [a-z0-9_-] and unique; images are not shared", "[config][disks]") {
    const std::string id32(32, 'a'), id33(33, 'a');
    CHECK(error_of(kMinimal, {"disks[0].id=" + id32, "disks[0].path=x.img"}).empty());
    CHECK(error_of(kMinimal, {"disks[0].id=" + id33, "disks[0].path=x.img"}) ==
          "disks[0].id: must be 1..32 of a-z, 0-9, '_', '-', got \"" + id33 + "\"");
    CHECK(error_of(kMinimal, {R"(disks[0].id="")", "disks[0].path=x.img"}) ==
          "disks[0].id: must be 1..32 of a-z, 0-9, '_', '-', got \"\"");
    CHECK(error_of(kMinimal, {"disks[0].id=Data", "disks[0].path=x.img"}) ==
          "disks[0].id: must be 1..32 of a-z, 0-9, '_', '-', got \"Data\"");
    CHECK(error_of(kMinimal, {"disks[0].path=x.img"}) == "disks[0].id: missing (a name for the disk, e.g. \"system\")");
    CHECK(error_of(kMinimal, {"disks[0].id=a"}) == "disks[0].path: missing (the raw disk image)");
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "disks": [{"id": "a", "path": "x.img"}, {"id": "a", "path": "y.img"}]})") ==
          "disks[1].id: \"a\" is already the id of disks[0]");
    const std::string same_image = error_of(
        R"({"kernel": {"path": "kernel.elf"}, "disks": [{"id": "a", "path": "x.img"}, {"id": "b", "path": "./x.img"}]})");
    CHECK_THAT(same_image, Catch::StartsWith("disks[1].path: ") && Catch::EndsWith("x.img is already the image of disks[0]"));
}

TEST_CASE("disks[]: bad values name the element and key", "[config][disks]") {
    CHECK(error_of(with_disks(1, R"(, "bus": "scsi")")) == "disks[0].bus: must be one of vmbus, ide, got \"scsi\"");
    CHECK(error_of(with_disks(1, R"(, "cache": "unsafe")")) ==
          "disks[0].cache: must be one of none, writeback, got \"unsafe\"");
    CHECK(error_of(with_disks(1, R"(, "read_only": 1)")) == "disks[0].read_only: expected true or false, got integer 1");
    CHECK(error_of(with_disks(1, R"(, "size_mib": 1)")).empty());
    CHECK(error_of(with_disks(1, R"(, "size_mib": 0)")) == "disks[0].size_mib: must be 1..1073741824, got 0");
    CHECK(error_of(with_disks(1, R"(, "size_mib": 1073741824)")).empty());
    CHECK(error_of(with_disks(1, R"(, "size_mib": 1073741825)")) ==
          "disks[0].size_mib: must be 1..1073741824, got 1073741825");
    CHECK(error_of(with_disks(1, R"(, "readonly": true)")) == "disks[0].readonly: unknown key (did you mean \"read_only\"?)");
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "disks": {"id": "a"}})") == "disks: expected an array, got an object");
}

TEST_CASE("control.socket: a writable path of at most 107 bytes", "[config][control]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    CHECK(parse_config(kMinimal, dir.path()).control.socket.empty());
    CHECK(parse_config(kMinimal, dir.path(), {"control.socket=" + (dir.path() / "vm.sock").string()}).control.socket ==
          dir.path() / "vm.sock");
    // The limit counts the resolved path: pad an absolute path under /tmp to exactly 107 and 108.
    const std::string base = "/tmp/";
    const std::string fits = base + std::string(107 - base.size(), 's');
    const std::string too_long = base + std::string(108 - base.size(), 's');
    CHECK(error_of(kMinimal, {"control.socket=" + fits}).empty());
    CHECK(error_of(kMinimal, {"control.socket=" + too_long}) ==
          "control.socket: must be at most 107 bytes (a Unix socket path), got 108");
    CHECK(error_of(kMinimal, {R"(control.socket="")"}) == "control.socket: must be a path, got \"\"");
    CHECK(error_of(kMinimal, {"control.socket=/nonexistent-folder/vm.sock"}) ==
          "control.socket: folder /nonexistent-folder does not exist");
}

TEST_CASE("vmbus: enabled by default; the shutdown timeout is 0..600000 ms", "[config][vmbus]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig defaults = parse_config(kMinimal, dir.path());
    CHECK(defaults.vmbus.enabled);
    CHECK(defaults.vmbus.shutdown_timeout_ms == 2000);
    CHECK_FALSE(parse_config(kMinimal, dir.path(), {"vmbus.enabled=false"}).vmbus.enabled);
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.shutdown_timeout_ms=0"}).vmbus.shutdown_timeout_ms == 0);
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.shutdown_timeout_ms=600000"}).vmbus.shutdown_timeout_ms == 600000);
    CHECK(error_of(kMinimal, {"vmbus.shutdown_timeout_ms=600001"}) ==
          "vmbus.shutdown_timeout_ms: must be 0..600000, got 600001");
    CHECK(error_of(kMinimal, {"vmbus.enable=true"}) == "vmbus.enable: unknown key (did you mean \"enabled\"?)");
}

TEST_CASE("vmbus: the VSPs' poll window is 0..1000 µs, 50 by default", "[config][vmbus]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    CHECK(parse_config(kMinimal, dir.path()).vmbus.poll_window_us == 50);
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.poll_window_us=0"}).vmbus.poll_window_us == 0);
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.poll_window_us=1000"}).vmbus.poll_window_us == 1000);
    CHECK(error_of(kMinimal, {"vmbus.poll_window_us=1001"}) == "vmbus.poll_window_us: must be 0..1000, got 1001");
    CHECK(error_of(kMinimal, {"vmbus.poll_window_us=-1"}) == "vmbus.poll_window_us: must be 0..1000, got -1");
}

TEST_CASE("vmbus: the root partition's CPUs are distinct host CPU numbers below CPU_SETSIZE", "[config][vmbus]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    CHECK(parse_config(kMinimal, dir.path()).vmbus.root_cpus.empty());
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.root_cpus=[1,0]"}).vmbus.root_cpus == std::vector<uint32_t>{1, 0});
    CHECK(parse_config(kMinimal, dir.path(), {"vmbus.root_cpus=[1023]"}).vmbus.root_cpus == std::vector<uint32_t>{1023});
    CHECK(error_of(kMinimal, {"vmbus.root_cpus=[1024]"}) == "vmbus.root_cpus[0]: must be 0..1023, got 1024");
    CHECK(error_of(kMinimal, {"vmbus.root_cpus=[2,2]"}) == "vmbus.root_cpus: names CPU 2 twice");
    CHECK(error_of(kMinimal, {"vmbus.root_cpus=1"}) == "vmbus.root_cpus: expected an array of integers, got integer 1");
}

TEST_CASE("debug: the SynIC echo device and root-partition faults", "[config][vmbus]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    const VmConfig defaults = parse_config(kMinimal, dir.path());
    CHECK_FALSE(defaults.debug.synic_echo);
    CHECK(defaults.debug.root_partition_fault == RootPartitionFault::kNone);
    CHECK(parse_config(kMinimal, dir.path(), {"debug.synic_echo=true"}).debug.synic_echo);
    const std::pair<const char*, RootPartitionFault> faults[] = {{"none", RootPartitionFault::kNone},
                                                                 {"forbidden-syscall", RootPartitionFault::kForbiddenSyscall},
                                                                 {"crash", RootPartitionFault::kCrash},
                                                                 {"hang", RootPartitionFault::kHang}};
    for (const auto& [name, fault] : faults)
        CHECK(parse_config(kMinimal, dir.path(), {std::string("debug.root_partition_fault=") + name}).debug.root_partition_fault ==
              fault);
    CHECK(error_of(kMinimal, {"debug.root_partition_fault=exit"}) ==
          "debug.root_partition_fault: must be one of none, forbidden-syscall, crash, hang, got \"exit\"");
}

TEST_CASE("kvp: string pairs for the guest's external pool; keys 1..255 and values 0..1023 UTF-16 characters, 64 pairs", "[config][vmbus]") {
    TempDir dir;
    dir.write("kernel.elf", "x");
    CHECK(parse_config(kMinimal, dir.path()).kvp.empty());
    const VmConfig config = parse_config(R"({"kernel": {"path": "kernel.elf"}, "kvp": {"Env": "test", "Empty": ""}})", dir.path());
    CHECK(config.kvp == KvpConfig{{"Empty", ""}, {"Env", "test"}});
    CHECK(parse_config(kMinimal, dir.path(), {"kvp.Role=web"}).kvp.at("Role") == "web");

    auto with_pair = [](const std::string& key, const std::string& value) {
        return fmt::format(R"({{"kernel": {{"path": "kernel.elf"}}, "kvp": {{"{}": "{}"}}}})", key, value);
    };
    CHECK(error_of(with_pair(std::string(255, 'k'), "v")).empty());
    CHECK(error_of(with_pair(std::string(256, 'k'), "v")) ==
          "kvp." + std::string(256, 'k') + ": a key must be 1..255 UTF-16 characters without NUL");
    CHECK(error_of(with_pair("", "v")) == "kvp.: a key must be 1..255 UTF-16 characters without NUL");
    CHECK(error_of(with_pair("k", std::string(1023, 'v'))).empty());
    CHECK(error_of(with_pair("k", std::string(1024, 'v'))) == "kvp.k: a value must be at most 1023 UTF-16 characters without NUL");
    // A character outside the BMP takes two UTF-16 units.
    std::string emoji_key;
    for (int i = 0; i < 127; ++i) emoji_key += "\xf0\x9f\x98\x80";
    CHECK(error_of(with_pair(emoji_key + "k", "v")).empty());
    CHECK_FALSE(error_of(with_pair(emoji_key + "kk", "v")).empty());
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "kvp": {"n": 1}})") == "kvp.n: expected a string, got integer 1");
    CHECK(error_of(R"({"kernel": {"path": "kernel.elf"}, "kvp": ["a"]})") == "kvp: expected an object of string values, got an array");

    std::string pairs;
    for (int i = 0; i < 65; ++i) pairs += fmt::format(R"({}"k{}": "v")", i ? ", " : "", i);
    const std::string sixty_five = R"({"kernel": {"path": "kernel.elf"}, "kvp": {)" + pairs + "}}";
    CHECK(error_of(sixty_five) == "kvp: must have at most 64 pairs, got 65");
    CHECK(error_of(kMinimal, {"kvp.k=null"}) == "kvp.k: expected a string, got null");
}
