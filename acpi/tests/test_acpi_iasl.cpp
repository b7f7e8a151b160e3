// ACPICA's own tools read what the builder writes: `iasl -d` disassembles every table without a
// complaint, and the field values it decodes are the topology's. The RSDP has no table header,
// so iasl cannot disassemble it alone; instead iasl compiles an RSDP from text (computing both
// checksums itself) and the bytes must equal ours. Skipped, with the reason, without iasl.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "acpi_test_support.h"

namespace hvkvm::acpi::test {
namespace {

namespace fs = std::filesystem;
using host::AcpiImage;
using host::ApicEntries;

std::optional<fs::path> find_iasl() {
    const char* path = std::getenv("PATH");
    std::stringstream folders(path ? path : "");
    for (std::string folder; std::getline(folders, folder, ':');)
        if (!folder.empty() && fs::exists(fs::path(folder) / "iasl")) return fs::path(folder) / "iasl";
    return std::nullopt;
}

// iasl, or nullopt after reporting the test as skipped (ctest reads "SKIPPED:").
std::optional<fs::path> iasl_or_skip() {
    std::optional<fs::path> iasl = find_iasl();
    if (!iasl) WARN("SKIPPED: iasl is not installed (Debian package acpica-tools; .ci/install-deps installs it)");
    return iasl;
}

class ScratchDir {
public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "hvkvm-iasl-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

struct Run {
    int status = -1;
    std::string output;
};

Run run_in(const fs::path& folder, const fs::path& iasl, const std::string& arguments) {
    const std::string command = "cd '" + folder.string() + "' && '" + iasl.string() + "' " + arguments + " 2>&1";
    Run run;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    for (size_t got; (got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) run.output.append(buffer, got);
    run.status = ::pclose(pipe);
    return run;
}

std::string read_file(const fs::path& path) {
    std::ifstream file(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(file), {});
}

// What iasl prints about a table it has trouble with (checksums, subtable lengths, unknown
// types, values out of range), in its log or as comments in the disassembly.
const char* const kComplaints[] = {"Incorrect checksum", "Warning", "Error", "****", "Invalid", "Unknown", "terminates early"};

std::string complaints_in(const std::string& text) {
    std::string found;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        for (const char* complaint : kComplaints)
            if (line.find(complaint) != std::string::npos) found += line + "\n";
    return found;
}

// "Name : Value" pairs of the disassembly, in order ("Local Apic ID" -> {"00", "01", ...}).
std::map<std::string, std::vector<std::string>> decoded_fields(const std::string& disassembly) {
    static const std::regex field(R"(^(?:\[[0-9A-F]+h [0-9]+ +[0-9]+\])?\s*([A-Za-z0-9 ()/-]*[A-Za-z0-9)])\s+: (.*)$)");
    std::map<std::string, std::vector<std::string>> fields;
    std::istringstream lines(disassembly);
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (std::regex_match(line, match, field)) fields[match[1]].push_back(match[2]);
    }
    return fields;
}

std::string hex(uint64_t value, int digits) {
    char text[32];
    std::snprintf(text, sizeof(text), "%0*llX", digits, static_cast<unsigned long long>(value));
    return text;
}

struct Disassembly {
    std::string complaints;  // empty when iasl was content
    std::map<std::string, std::vector<std::string>> fields;
};

Disassembly disassemble(const fs::path& iasl, const ScratchDir& scratch, const std::string& name,
                        const uint8_t* bytes, size_t length) {
    std::ofstream(scratch.path() / (name + ".dat"), std::ios::binary).write(reinterpret_cast<const char*>(bytes), length);
    Run run = run_in(scratch.path(), iasl, "-d " + name + ".dat");
    Disassembly result;
    const std::string dsl = read_file(scratch.path() / (name + ".dsl"));
    if (run.status != 0) result.complaints += "iasl exit status " + std::to_string(run.status) + "\n";
    if (run.output.find("decoded") == std::string::npos) result.complaints += "iasl did not decode the table\n";
    result.complaints += complaints_in(run.output) + complaints_in(dsl);
    result.fields = decoded_fields(dsl);
    INFO(run.output);
    return result;
}

Disassembly disassemble(const fs::path& iasl, const ScratchDir& scratch, const AcpiImage& image, std::string_view table) {
    const host::TableLocation& location = image.table(table);
    return disassemble(iasl, scratch, std::string(table), image.bytes.data() + location.offset, location.length);
}

void check_madt(const Disassembly& madt, const numa::Topology& topology, ApicEntries entries) {
    const uint32_t cpus = topology.cpu_count();
    const bool x2apic = entries == ApicEntries::kX2Apic;
    const auto& ids = madt.fields.at(x2apic ? "Processor x2Apic ID" : "Local Apic ID");
    REQUIRE(ids.size() == cpus);
    for (uint32_t cpu = 0; cpu < cpus; ++cpu) CHECK(ids[cpu] == hex(cpu, x2apic ? 8 : 2));
    CHECK(madt.fields.at("Processor Enabled") == std::vector<std::string>(cpus, "1"));
    CHECK(madt.fields.at("Local Apic Address") == std::vector<std::string>{"FEE00000"});
    CHECK(madt.fields.at("Address") == std::vector<std::string>{"FEC00000"});  // the I/O APIC
}

void check_srat(const Disassembly& srat, const numa::Topology& topology, ApicEntries entries) {
    const uint32_t cpus = topology.cpu_count();
    const bool x2apic = entries == ApicEntries::kX2Apic;
    const auto& ids = srat.fields.at("Apic ID");
    REQUIRE(ids.size() == cpus);
    std::vector<std::string> memory_domains;
    if (x2apic) {
        const auto& domains = srat.fields.at("Proximity Domain");  // CPUs first, then memory
        REQUIRE(domains.size() == cpus + topology.memory_range_count);
        for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
            CHECK(ids[cpu] == hex(cpu, 8));
            CHECK(domains[cpu] == hex(topology.node_of_cpu(cpu), 8));
        }
        memory_domains.assign(domains.begin() + cpus, domains.end());
    } else {
        const auto& domains = srat.fields.at("Proximity Domain Low(8)");
        REQUIRE(domains.size() == cpus);
        for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
            CHECK(ids[cpu] == hex(cpu, 2));
            CHECK(domains[cpu] == hex(topology.node_of_cpu(cpu), 2));
        }
        memory_domains = srat.fields.at("Proximity Domain");
    }
    REQUIRE(memory_domains.size() == topology.memory_range_count);
    const auto& bases = srat.fields.at("Base Address");
    const auto& lengths = srat.fields.at("Address Length");
    for (uint32_t i = 0; i < topology.memory_range_count; ++i) {
        CHECK(memory_domains[i] == hex(topology.memory_ranges[i].node, 8));
        CHECK(bases[i] == hex(topology.memory_ranges[i].base, 16));
        CHECK(lengths[i] == hex(topology.memory_ranges[i].size, 16));
    }
}

void check_slit(const Disassembly& slit, const numa::Topology& topology) {
    CHECK(slit.fields.at("Localities") == std::vector<std::string>{hex(topology.node_count, 16)});
    for (uint32_t row = 0; row < topology.node_count; ++row) {
        std::string expected;
        for (uint32_t column = 0; column < topology.node_count; ++column)
            expected += (column ? " " : "") + hex(topology.distances.at(row, column), 2);
        char name[32];
        std::snprintf(name, sizeof(name), "Locality %3u", row);
        REQUIRE(slit.fields.count(name) == 1);
        // iasl wraps rows longer than 16 entries; hvkvm has at most 16 nodes.
        CHECK(slit.fields.at(name).front() == expected);
    }
}

void check_xsdt(const Disassembly& xsdt, const AcpiImage& image) {
    int index = 0;
    for (const char* table : {"APIC", "SRAT", "SLIT"}) {
        char name[40];
        std::snprintf(name, sizeof(name), "ACPI Table Address %3d", index++);
        CHECK(xsdt.fields.at(name) == std::vector<std::string>{hex(table_gpa(image, table), 16)});
    }
}

// iasl compiles an RSDP from its text form, working out both checksums; ours must be identical.
void check_rsdp(const fs::path& iasl, const ScratchDir& scratch, const AcpiImage& image) {
    std::ofstream(scratch.path() / "rsdp.asl")
        << "[0008] Signature : \"RSD PTR \"\n[0001] Checksum : 00\n[0006] Oem ID : \"HVKVM \"\n"
        << "[0001] Revision : 02\n[0004] RSDT Address : 00000000\n[0004] Length : 00000024\n"
        << "[0008] XSDT Address : " << hex(table_gpa(image, "XSDT"), 16) << "\n"
        << "[0001] Extended Checksum : 00\n[0003] Reserved : 000000\n";
    Run run = run_in(scratch.path(), iasl, "rsdp.asl");
    INFO(run.output);
    REQUIRE(run.status == 0);
    const std::string compiled_text = read_file(scratch.path() / "rsdp.aml");
    const std::vector<uint8_t> compiled(compiled_text.begin(), compiled_text.end());
    const std::vector<uint8_t> ours(image.bytes.begin(), image.bytes.begin() + sizeof(Rsdp));
    CHECK(compiled == ours);
}

numa::Topology scenario_topology(int scenario) {
    switch (scenario) {
    case 0: return uniform_topology(1, 1);
    case 1: return uniform_topology(2, 2);
    case 2: {
        numa::Topology topology = uniform_topology(4, 3);
        topology.node_cpus[3] = numa::CpuSet();  // node 3: memory only
        topology.node_cpus[0] = numa::CpuSet::range(0, 3) | numa::CpuSet::range(9, 3);
        const uint8_t rows[4][4] = {{10, 16, 22, 255}, {16, 10, 22, 28}, {22, 22, 10, 16}, {254, 28, 16, 10}};
        for (uint32_t a = 0; a < 4; ++a)
            for (uint32_t b = 0; b < 4; ++b) topology.distances.set(a, b, rows[a][b]);
        topology.memory_ranges[4] = {0x100000000, 0x40000000, 2};  // above the MMIO hole
        topology.memory_range_count = 5;
        return topology;
    }
    default: return uniform_topology(numa::kMaxNodes, numa::kMaxCpus / numa::kMaxNodes, 4);
    }
}

TEST_CASE("iasl: every table disassembles cleanly and decodes to the topology") {
    std::optional<fs::path> iasl = iasl_or_skip();
    if (!iasl) return;
    ScratchDir scratch;
    for (int scenario = 0; scenario < 4; ++scenario) {
        for (ApicEntries entries : {ApicEntries::kXApic, ApicEntries::kX2Apic}) {
            const numa::Topology topology = scenario_topology(scenario);
            const AcpiImage image = host::build_acpi_tables(topology, topology.cpu_count(), kImageGpa, entries);
            INFO("scenario " << scenario << (entries == ApicEntries::kX2Apic ? ", x2APIC" : ", local APIC"));
            std::map<std::string, Disassembly> tables;
            for (const char* table : {"XSDT", "APIC", "SRAT", "SLIT"}) {
                tables[table] = disassemble(*iasl, scratch, image, table);
                INFO(table);
                CHECK(tables[table].complaints == "");
            }
            check_xsdt(tables["XSDT"], image);
            check_madt(tables["APIC"], topology, entries);
            check_srat(tables["SRAT"], topology, entries);
            check_slit(tables["SLIT"], topology);
            check_rsdp(*iasl, scratch, image);
        }
    }
}

TEST_CASE("iasl: the check notices a bad checksum and a broken subtable (it can fail)") {
    std::optional<fs::path> iasl = iasl_or_skip();
    if (!iasl) return;
    ScratchDir scratch;
    AcpiImage image = host::build_acpi_tables(uniform_topology(2, 2), 4, kImageGpa);
    const host::TableLocation& srat = image.table("SRAT");
    image.bytes[srat.offset + srat.length - 1] ^= 1;
    CHECK_THAT(disassemble(*iasl, scratch, image, "SRAT").complaints, Catch::Matchers::Contains("Incorrect checksum"));

    image = host::build_acpi_tables(uniform_topology(2, 2), 4, kImageGpa);
    patch(image, "APIC", sizeof(MadtHeader) + 1, uint8_t{0});  // first subtable: length 0
    CHECK_FALSE(disassemble(*iasl, scratch, image, "APIC").complaints.empty());
}

}  // namespace
}  // namespace hvkvm::acpi::test
