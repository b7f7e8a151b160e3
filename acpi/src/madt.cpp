// MADT: the enabled processors (local APIC or x2APIC entries), the I/O APIC, ISA interrupt
// overrides and local APIC NMI wiring. Processors are read in a first pass so that NMI entries
// can be checked against their UIDs wherever they appear in the table.
#include "hvkvm/numa/cpu_set.h"
#include "parser_internal.h"

namespace hvkvm::acpi::detail {
namespace {

constexpr uint32_t kKnownProcessorFlags = kProcessorEnabled | kProcessorOnlineCapable;
constexpr uint32_t kKnownMadtFlags = kMadtPcAtCompatible;

Status check_inti_flags(uint16_t flags) {
    const uint16_t polarity = flags & kIntiPolarityMask;
    const uint16_t trigger = (flags & kIntiTriggerMask) >> kIntiTriggerShift;
    if ((flags & ~(kIntiPolarityMask | kIntiTriggerMask)) != 0 || polarity == kIntiReserved || trigger == kIntiReserved)
        return Status::failure("interrupt flags %#x use reserved values", flags);
    return Status::ok();
}

class MadtReader {
public:
    explicit MadtReader(ParsedTables& out) : out_(out) {}

    Status read_processor(const Subtable& entry) {
        if (entry.type == kMadtLocalApic) {
            MadtLocalApic apic{};
            if (Status status = copy_subtable(entry, apic); !status) return status;
            return add_processor(apic.apic_id, apic.processor_uid, apic.flags);
        }
        if (entry.type == kMadtLocalX2apic) {
            MadtLocalX2apic apic{};
            if (Status status = copy_subtable(entry, apic); !status) return status;
            return add_processor(apic.x2apic_id, apic.processor_uid, apic.flags);
        }
        return check_length(entry);
    }

    Status read_other(const Subtable& entry) {
        switch (entry.type) {
        case kMadtIoApic: return read_io_apic(entry);
        case kMadtInterruptOverride: return read_override(entry);
        case kMadtLocalApicNmi: {
            MadtLocalApicNmi nmi{};
            if (Status status = copy_subtable(entry, nmi); !status) return status;
            const uint32_t uid = nmi.processor_uid == kAllProcessorsUid8 ? kAllProcessorsUid32 : nmi.processor_uid;
            return check_nmi(uid, nmi.flags, nmi.lint);
        }
        case kMadtLocalX2apicNmi: {
            MadtLocalX2apicNmi nmi{};
            if (Status status = copy_subtable(entry, nmi); !status) return status;
            return check_nmi(nmi.processor_uid, nmi.flags, nmi.lint);
        }
        default: return Status::ok();  // processors (first pass) and types hvkvm has no use for
        }
    }

    // After both passes: the vCPUs are numbered by APIC ID, so the IDs must be 0..count-1.
    Status check_processors() const {
        if (out_.cpu_count == 0) return Status::failure("MADT lists no enabled processor");
        const numa::CpuSet expected = numa::CpuSet::range(0, out_.cpu_count);
        if (apic_ids_ != expected) {
            const uint32_t missing = numa::CpuSet::from_bits(expected.bits() & ~apic_ids_.bits()).first();
            return Status::failure("MADT: APIC IDs must be 0..%u, and %u is missing", out_.cpu_count - 1, missing);
        }
        return Status::ok();
    }

private:
    // The first pass checks every known entry's length, so that a wrong one is reported at that
    // entry rather than as a broken walk further on.
    static Status check_length(const Subtable& entry) {
        uint32_t expected = entry.length;
        switch (entry.type) {
        case kMadtIoApic: expected = sizeof(MadtIoApic); break;
        case kMadtInterruptOverride: expected = sizeof(MadtInterruptOverride); break;
        case kMadtLocalApicNmi: expected = sizeof(MadtLocalApicNmi); break;
        case kMadtLocalX2apicNmi: expected = sizeof(MadtLocalX2apicNmi); break;
        default: break;
        }
        if (entry.length != expected)
            return Status::failure("type %u has length %u, expected %u", entry.type, entry.length, expected);
        return Status::ok();
    }

    Status add_processor(uint32_t apic_id, uint32_t uid, uint32_t flags) {
        if ((flags & ~kKnownProcessorFlags) != 0) return Status::failure("processor flags %#x use reserved bits", flags);
        if ((flags & kProcessorEnabled) == 0) return Status::ok();  // hot-plug slots: not supported, ignored
        if (apic_id >= numa::kMaxCpus)
            return Status::failure("APIC ID %u is beyond the %u vCPUs supported", apic_id, numa::kMaxCpus);
        if (apic_ids_.contains(apic_id)) return Status::failure("APIC ID %u appears twice", apic_id);
        for (uint32_t i = 0; i < out_.cpu_count; ++i)
            if (out_.cpus[i].uid == uid) return Status::failure("processor UID %u appears twice", uid);
        apic_ids_.add(apic_id);
        out_.cpus[out_.cpu_count++] = Cpu{apic_id, uid, numa::kNoNode};
        return Status::ok();
    }

    Status read_io_apic(const Subtable& entry) {
        MadtIoApic io_apic{};
        if (Status status = copy_subtable(entry, io_apic); !status) return status;
        if (out_.io_apic_count == kMaxIoApics)
            return Status::failure("more than %u I/O APIC", kMaxIoApics);
        if (io_apic.reserved != 0) return Status::failure("I/O APIC reserved byte is %u, not 0", io_apic.reserved);
        if (io_apic.address == 0 || io_apic.address % 4096 != 0)
            return Status::failure("I/O APIC address %#x is not a page address", io_apic.address);
        out_.io_apics[out_.io_apic_count++] = IoApic{io_apic.io_apic_id, io_apic.address, io_apic.gsi_base};
        return Status::ok();
    }

    Status read_override(const Subtable& entry) {
        MadtInterruptOverride override{};
        if (Status status = copy_subtable(entry, override); !status) return status;
        if (override.bus != kIsaBus) return Status::failure("interrupt override on bus %u, not ISA (0)", override.bus);
        if (override.source_irq >= kIsaIrqCount)
            return Status::failure("interrupt override of IRQ %u, beyond the ISA IRQs", override.source_irq);
        if (Status status = check_inti_flags(override.flags); !status) return status;
        for (uint32_t i = 0; i < out_.override_count; ++i)
            if (out_.overrides[i].isa_irq == override.source_irq)
                return Status::failure("IRQ %u is overridden twice", override.source_irq);
        // Distinct ISA IRQs, so the count cannot pass kMaxInterruptOverrides.
        static_assert(kMaxInterruptOverrides == kIsaIrqCount);
        out_.overrides[out_.override_count++] = InterruptOverride{override.source_irq, override.gsi, override.flags};
        return Status::ok();
    }

    Status check_nmi(uint32_t uid, uint16_t flags, uint8_t lint) const {
        if (lint > 1) return Status::failure("NMI on LINT%u; a local APIC has LINT0 and LINT1", lint);
        if (Status status = check_inti_flags(flags); !status) return status;
        if (uid == kAllProcessorsUid32) return Status::ok();
        for (uint32_t i = 0; i < out_.cpu_count; ++i)
            if (out_.cpus[i].uid == uid) return Status::ok();
        return Status::failure("NMI for processor UID %u, which is not an enabled processor", uid);
    }

    ParsedTables& out_;
    numa::CpuSet apic_ids_;
};

}  // namespace

Status parse_madt(const TableRef& madt, ParsedTables& out) {
    if (Status status = check_table_shape(madt, kMadtMinRevision, sizeof(MadtHeader)); !status) return status;
    MadtHeader header{};
    copy_bytes(&header, madt.bytes, sizeof(header));
    if ((header.flags & ~kKnownMadtFlags) != 0) return Status::failure("MADT: flags %#x use reserved bits", header.flags);
    out.local_apic_address = header.local_apic_address;
    out.pc_at_compatible = (header.flags & kMadtPcAtCompatible) != 0;

    MadtReader reader(out);
    auto processors = [&](const Subtable& entry) { return reader.read_processor(entry); };
    auto others = [&](const Subtable& entry) { return reader.read_other(entry); };
    if (Status status = walk_subtables(madt, sizeof(MadtHeader), processors); !status) return status;
    if (Status status = walk_subtables(madt, sizeof(MadtHeader), others); !status) return status;
    return reader.check_processors();
}

}  // namespace hvkvm::acpi::detail
