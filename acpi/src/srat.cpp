// SRAT: the node (proximity domain) of each processor and memory range. Every enabled MADT
// processor needs exactly one affinity entry; memory ranges may not overlap.
#include "hvkvm/numa/topology.h"
#include "parser_internal.h"

namespace hvkvm::acpi::detail {
namespace {

constexpr uint32_t kKnownProcessorAffinityFlags = kProcessorEnabled;

class SratReader {
public:
    explicit SratReader(ParsedTables& out) : out_(out) {
        for (uint32_t& index : affinity_entry_of_cpu_) index = kNoEntry;
    }

    Status read(const Subtable& entry) {
        switch (entry.type) {
        case kSratLocalApicAffinity: {
            SratLocalApicAffinity affinity{};
            if (Status status = copy_subtable(entry, affinity); !status) return status;
            const uint32_t domain = affinity.proximity_domain_low | uint32_t{affinity.proximity_domain_high[0]} << 8 |
                                    uint32_t{affinity.proximity_domain_high[1]} << 16 |
                                    uint32_t{affinity.proximity_domain_high[2]} << 24;
            return add_processor(entry.index, affinity.apic_id, domain, affinity.flags);
        }
        case kSratLocalX2apicAffinity: {
            SratLocalX2apicAffinity affinity{};
            if (Status status = copy_subtable(entry, affinity); !status) return status;
            return add_processor(entry.index, affinity.x2apic_id, affinity.proximity_domain, affinity.flags);
        }
        case kSratMemoryAffinity: {
            SratMemoryAffinity memory{};
            if (Status status = copy_subtable(entry, memory); !status) return status;
            return add_memory(entry.index, memory);
        }
        default: return Status::ok();  // affinity of devices hvkvm does not model
        }
    }

    Status check_every_cpu_placed() const {
        for (uint32_t i = 0; i < out_.cpu_count; ++i)
            if (out_.cpus[i].node == numa::kNoNode)
                return Status::failure("SRAT: no affinity entry for the processor with APIC ID %u", out_.cpus[i].apic_id);
        return Status::ok();
    }

private:
    static constexpr uint32_t kNoEntry = 0xffffffffu;

    Status check_domain(uint32_t domain) const {
        if (domain >= out_.topology.node_count)
            return Status::failure("proximity domain %u is not in the SLIT (%u localities)", domain, out_.topology.node_count);
        return Status::ok();
    }

    Cpu* find_cpu(uint32_t apic_id) {
        for (uint32_t i = 0; i < out_.cpu_count; ++i)
            if (out_.cpus[i].apic_id == apic_id) return &out_.cpus[i];
        return nullptr;
    }

    Status add_processor(uint32_t index, uint32_t apic_id, uint32_t domain, uint32_t flags) {
        if ((flags & ~kKnownProcessorAffinityFlags) != 0) return Status::failure("processor flags %#x use reserved bits", flags);
        if ((flags & kProcessorEnabled) == 0) return Status::ok();
        Cpu* cpu = find_cpu(apic_id);
        if (cpu == nullptr) return Status::failure("APIC ID %u is not an enabled processor in the MADT", apic_id);
        if (Status status = check_domain(domain); !status) return status;
        uint32_t& first_entry = affinity_entry_of_cpu_[apic_id];  // apic_id < kMaxCpus: it is in the MADT
        if (first_entry != kNoEntry)
            return Status::failure("APIC ID %u already has a node (entry %u): a CPU in two nodes", apic_id, first_entry);
        first_entry = index;
        cpu->node = domain;
        out_.topology.node_cpus[domain].add(apic_id);
        return Status::ok();
    }

    Status add_memory(uint32_t index, const SratMemoryAffinity& memory) {
        if ((memory.flags & kMemoryEnabled) == 0) return Status::ok();
        if ((memory.flags & ~kMemoryEnabled) != 0)
            return Status::failure("memory flags %#x: hot-pluggable or non-volatile memory is not supported", memory.flags);
        if (Status status = check_domain(memory.proximity_domain); !status) return status;
        numa::Topology& topology = out_.topology;
        if (topology.memory_range_count == numa::kMaxMemoryRanges)
            return Status::failure("more than %u memory ranges", numa::kMaxMemoryRanges);
        const numa::MemoryRange range{memory.base, memory.length, memory.proximity_domain};
        if (Status status = check_range(range); !status) return status;
        for (uint32_t i = 0; i < topology.memory_range_count; ++i) {
            const numa::MemoryRange& other = topology.memory_ranges[i];
            if (range.base < other.end() && other.base < range.end())
                return Status::failure("memory [%#llx, %#llx) overlaps entry %u's [%#llx, %#llx)", as_ull(range.base),
                                       as_ull(range.end()), range_entry_[i], as_ull(other.base), as_ull(other.end()));
        }
        range_entry_[topology.memory_range_count] = index;
        topology.memory_ranges[topology.memory_range_count++] = range;
        return Status::ok();
    }

    static Status check_range(const numa::MemoryRange& range) {
        if (range.size == 0) return Status::failure("memory range at %#llx is empty", as_ull(range.base));
        if (range.base % numa::kMemoryGranule != 0 || range.size % numa::kMemoryGranule != 0)
            return Status::failure("memory [%#llx, +%#llx) is not 4 KiB-aligned", as_ull(range.base), as_ull(range.size));
        if (range.end() < range.base) return Status::failure("memory at %#llx wraps past the end of the address space", as_ull(range.base));
        return Status::ok();
    }

    ParsedTables& out_;
    uint32_t affinity_entry_of_cpu_[numa::kMaxCpus];
    uint32_t range_entry_[numa::kMaxMemoryRanges] = {};
};

}  // namespace

Status parse_srat(const TableRef& srat, ParsedTables& out) {
    if (Status status = check_table_shape(srat, kSratMinRevision, sizeof(SratHeader)); !status) return status;
    SratHeader header{};
    copy_bytes(&header, srat.bytes, sizeof(header));
    if (header.table_revision != kSratTableRevision)
        return Status::failure("SRAT: table revision field is %u, must be 1", header.table_revision);
    SratReader reader(out);
    if (Status status = walk_subtables(srat, sizeof(SratHeader), [&](const Subtable& entry) { return reader.read(entry); });
        !status)
        return status;
    return reader.check_every_cpu_placed();
}

}  // namespace hvkvm::acpi::detail
