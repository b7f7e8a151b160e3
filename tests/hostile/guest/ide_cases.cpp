// The emulated IDE controller under abuse (abi/devices.h, abi/ata.h), run with a config that has
// a master and a read-only slave (tests/hostile/CMakeLists.txt): every command byte with garbage
// task files, data-port traffic without DRQ, huge sector counts, PRD tables that point at MMIO,
// beyond RAM, at themselves or never end, resets in the middle of transfers while other vCPUs
// hammer the registers. Each case ends by checking that the device still answers IDENTIFY and a
// DMA read correctly, and the runner that the VMM stayed up and bounded.
#include "cases.h"
#include "guest.h"
#include "hvkvm/abi/ata.h"
#include "hvkvm/abi/devices.h"

namespace hostile {
namespace {

namespace ata = hvkvm::abi::ata;

constexpr uint16_t kCommandBlock = abi::kIdeCommandBlockPort;
constexpr uint16_t kControl = abi::kIdeControlBlockPort;
constexpr uint16_t kBusMaster = abi::kIdeBusMasterPort;
constexpr uint64_t kMaxPolls = 200'000;  // ~5 s of status reads at ~26 us each

uint8_t alternate_status() { return inb(kControl); }
void out_register(uint16_t reg, uint8_t value) { outb(static_cast<uint16_t>(kCommandBlock + reg), value); }

// Polls until BSY clears; false if it never does.
bool wait_not_busy(uint64_t polls = kMaxPolls) {
    for (uint64_t i = 0; i < polls; ++i)
        if (!(alternate_status() & ata::kStatusBsy)) return true;
    return false;
}

// A software reset: whatever the channel was doing, it must come back ready.
void reset_channel() {
    outb(kControl, ata::kControlSrst | ata::kControlNien);
    outb(kControl, ata::kControlNien);
    outb(kBusMaster + ata::kBmCommand, 0);
    outb(kBusMaster + ata::kBmStatus, ata::kBmError | ata::kBmInterrupt);
    check(wait_not_busy(), "the channel stays BSY after a software reset");
}

void select(uint32_t drive) { out_register(ata::kDevice, static_cast<uint8_t>(0xe0 | (drive ? ata::kDeviceSlave : 0))); }

void lba48(uint64_t lba, uint32_t count) {
    for (uint32_t half : {1u, 0u}) {
        out_register(ata::kSectorCount, static_cast<uint8_t>(count >> (8 * half)));
        out_register(ata::kLbaLow, static_cast<uint8_t>(lba >> (24 * half)));
        out_register(ata::kLbaMid, static_cast<uint8_t>(lba >> (24 * half + 8)));
        out_register(ata::kLbaHigh, static_cast<uint8_t>(lba >> (24 * half + 16)));
    }
}

void insl(uint16_t port, void* destination, uint64_t count) {
    __asm__ volatile("rep insl" : "+D"(destination), "+c"(count) : "d"(port) : "memory");
}
void outsl(uint16_t port, const void* source, uint64_t count) {
    __asm__ volatile("rep outsl" : "+S"(source), "+c"(count) : "d"(port) : "memory");
}

uint64_t scratch_at(uint64_t offset) { return scratch_memory().base + offset; }

// The device still works: IDENTIFY on the master names the model, and a DMA read of one sector
// through a sane table succeeds.
void check_device_sane() {
    reset_channel();
    select(0);
    out_register(ata::kStatusCommand, ata::kCommandIdentifyDevice);
    check(wait_not_busy() && (alternate_status() & ata::kStatusDrq), "IDENTIFY after the abuse: status %x",
          uint64_t{alternate_status()});
    static uint16_t words[256];
    insl(kCommandBlock, words, 128);
    check(words[ata::kIdModelNumber] == ('h' << 8 | 'v'), "IDENTIFY returns the model after the abuse");
    auto* table = reinterpret_cast<ata::PrdEntry*>(scratch_at(0));
    table[0] = {static_cast<uint32_t>(scratch_at(0x10000)), 512, ata::kPrdEndOfTable};
    outl(kBusMaster + ata::kBmPrdTable, static_cast<uint32_t>(scratch_at(0)));
    select(0);
    lba48(1, 1);
    out_register(ata::kStatusCommand, ata::kCommandReadDmaExt);
    outb(kBusMaster + ata::kBmCommand, ata::kBmToMemory | ata::kBmStart);
    check(wait_not_busy() && !(alternate_status() & ata::kStatusErr), "a DMA read after the abuse");
    outb(kBusMaster + ata::kBmCommand, 0);
}

// Other vCPUs hammer the registers while the case runs: reads of every register but the data port
// (no side effects, so the case's own checks hold), or, for ide-garbage, writes of garbage too
// (never a command or a reset).
uint32_t stop_hammering, hammering_done, hammer_writes;
void hammer_registers(uint32_t cpu) {
    uint64_t state = 0x9e3779b97f4a7c15ull * (cpu + 1);
    const uint64_t rounds = 20'000 / vcpu_count() + 1;
    for (uint64_t i = 0; i < rounds && !atomic_load(stop_hammering); ++i) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        const auto offset = static_cast<uint16_t>(state % 8);
        const bool command_block = (state >> 8) % 2;
        const auto port = static_cast<uint16_t>((command_block ? kCommandBlock : kBusMaster) + offset);
        const bool write = atomic_load(hammer_writes) && (state >> 16) % 2;
        if (!write && !(command_block && offset == ata::kData)) inb(port);
        if (write && !(command_block && offset == ata::kStatusCommand)) outb(port, static_cast<uint8_t>(state >> 24));
    }
    atomic_add(hammering_done, 1u);
}

void start_hammering(bool writes = false) {
    atomic_store(hammer_writes, writes ? 1u : 0u);
    if (vcpu_count() > 1) start_all_aps(hammer_registers);
}
void stop_and_wait_for_hammering() {
    atomic_store(stop_hammering, 1u);
    if (vcpu_count() > 1) wait_for_count(hammering_done, vcpu_count() - 1);
}

// --- every command byte but FLUSH CACHE, with garbage task files ----------------------------------
void ide_garbage() {
    start_hammering(true);
    uint64_t state = 12345;
    static uint8_t sector[512];
    for (uint32_t command = 0; command <= 0xff; ++command) {
        // FLUSH CACHE is a host fdatasync, which on a busy host takes long enough to blow this
        // suite's time budget; the storage tests cover it.
        if (command == ata::kCommandFlushCache || command == ata::kCommandFlushCacheExt) continue;
        for (uint32_t drive = 0; drive < 2; ++drive) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            reset_channel();
            // Half the time an address on the disk (LBA28, below 32 MiB), so transfers really run.
            const bool on_disk = state % 2;
            const uint8_t device = on_disk ? static_cast<uint8_t>(ata::kDeviceLba) : static_cast<uint8_t>(state);
            out_register(ata::kDevice, static_cast<uint8_t>(device | (drive ? ata::kDeviceSlave : 0)));
            for (uint16_t reg = ata::kErrorFeature; reg <= ata::kLbaHigh; ++reg) {
                auto value = static_cast<uint8_t>(state >> (8 * reg));
                if (on_disk && reg == ata::kLbaMid) value &= 0x1f;  // below 4 MiB: the slave's size too
                if (on_disk && reg == ata::kLbaHigh) value = 0;
                out_register(reg, value);
            }
            out_register(ata::kStatusCommand, static_cast<uint8_t>(command));
            wait_not_busy(100);  // a DMA command stays BSY until the engine starts, below
            // A data phase: move one block either way (reads of a write phase read all-ones).
            if (alternate_status() & ata::kStatusDrq) {
                insl(kCommandBlock, sector, 128);
                outsl(kCommandBlock, sector, 128);
            }
            // A DMA command waits for the engine: start it with whatever table pointer is there.
            outb(kBusMaster + ata::kBmCommand, static_cast<uint8_t>(state >> 40) | ata::kBmStart);
            wait_not_busy();
        }
    }
    stop_and_wait_for_hammering();
    check_device_sane();
}

// --- data-port traffic without DRQ; huge PIO counts abandoned part-way ----------------------------
void ide_pio_abuse() {
    start_hammering();
    reset_channel();
    auto* buffer = reinterpret_cast<uint8_t*>(scratch_at(0));
    constexpr uint64_t kMiB = 1 << 20;
    memset(buffer, 0, kMiB);
    insl(kCommandBlock, buffer, kMiB / 4);  // no DRQ: all-ones (KVM batches these per page)
    bool all_ones = true;
    for (uint64_t i = 0; i < kMiB; ++i) all_ones &= buffer[i] == 0xff;
    check(all_ones, "data-port reads without DRQ read all-ones");
    outsl(kCommandBlock, buffer, 2048);  // without DRQ: dropped, one exit each
    outw(kCommandBlock, 0x1234);
    outb(kCommandBlock, 0x12);

    // 65536 sectors (count 0) by PIO: a few blocks in odd access sizes, then abandoned.
    for (uint8_t command : {ata::kCommandReadSectorsExt, ata::kCommandWriteSectorsExt}) {
        reset_channel();
        select(0);
        lba48(0, 0);
        out_register(ata::kStatusCommand, command);
        for (uint32_t block = 0; block < 8; ++block) {
            check(wait_not_busy() && (alternate_status() & ata::kStatusDrq), "huge PIO transfer, block %u", uint64_t{block});
            for (uint32_t i = 0; i < 170; ++i) {  // 170 x 3 bytes, then 2: one block, accesses straddling its end
                if (command == ata::kCommandReadSectorsExt) inw(kCommandBlock), inb(kCommandBlock);
                else outw(kCommandBlock, 0xaaaa), outb(kCommandBlock, 0x55);
            }
            if (command == ata::kCommandReadSectorsExt) inl(kCommandBlock);
            else outl(kCommandBlock, 0);
        }
    }
    // LBA48 addresses far beyond the disk, and at its very top.
    for (uint64_t lba : {uint64_t{1} << 47, (uint64_t{1} << 48) - 1, uint64_t{1} << 32}) {
        reset_channel();
        select(0);
        lba48(lba, 1);
        out_register(ata::kStatusCommand, ata::kCommandReadSectorsExt);
        check(wait_not_busy() && (alternate_status() & ata::kStatusErr), "a read at LBA %x is refused", lba);
    }
    stop_and_wait_for_hammering();
    check_device_sane();
}

// --- PRD tables that point at MMIO, beyond RAM, at themselves, or never end ------------------------
// Runs a DMA read of `sectors` at LBA 0 through the table at `table`; returns the bus-master status.
uint8_t dma_read(uint64_t table, uint32_t sectors, uint8_t engine = ata::kBmToMemory | ata::kBmStart) {
    reset_channel();
    outl(kBusMaster + ata::kBmPrdTable, static_cast<uint32_t>(table));
    select(0);
    lba48(0, sectors);
    out_register(ata::kStatusCommand, ata::kCommandReadDmaExt);
    outb(kBusMaster + ata::kBmCommand, engine);
    check(wait_not_busy(), "a DMA read through the table at %x ends", table);
    const uint8_t bus_master = inb(kBusMaster + ata::kBmStatus);
    outb(kBusMaster + ata::kBmCommand, 0);
    return bus_master;
}

void ide_dma_abuse() {
    start_hammering();
    const uint64_t table_gpa = (scratch_at(0) + 0xffff) & ~uint64_t{0xffff};  // a whole 64 KiB block
    auto* table = reinterpret_cast<ata::PrdEntry*>(table_gpa);
    const auto buffer = static_cast<uint32_t>(table_gpa + 0x10000);
    const uint64_t ram_end = ram_end_below_hole();
    struct {
        const char* what;
        uint64_t base;
    } const bad_buffers[] = {{"the IOAPIC", 0xfec00000}, {"the LAPIC", 0xfee00000}, {"the MMIO hole", 0xd0000000},
                             {"the end of RAM", ram_end - 256}, {"beyond RAM", ram_end}};
    for (const auto& bad : bad_buffers) {
        table[0] = {static_cast<uint32_t>(bad.base), 512, ata::kPrdEndOfTable};
        check(dma_read(table_gpa, 1) & ata::kBmError, "a PRD buffer at %s sets the bus-master error", bad.what);
    }
    for (uint64_t bad_table : {uint64_t{0xfec00000}, uint64_t{0xfffffff8}, ram_end - 4}) {
        check(dma_read(bad_table, 1) & ata::kBmError, "a PRD table at %x sets the bus-master error", bad_table);
    }
    // 8192 entries and no end-of-table: the engine stops at the 64 KiB boundary.
    for (uint32_t i = 0; i < ata::kPrdTableMaxEntries; ++i) table[i] = {buffer, 2, 0};
    check(dma_read(table_gpa, 32) & ata::kBmError, "a table without end-of-table sets the bus-master error");
    // An entry pointing at the table itself: the table is read before any data moves.
    table[0] = {static_cast<uint32_t>(table_gpa), 512, ata::kPrdEndOfTable};
    check(!(dma_read(table_gpa, 1) & ata::kBmError), "a read over its own PRD table");
    // 65536 sectors (32 MiB) through 512 entries that all point at the same 64 KiB.
    for (uint32_t i = 0; i < 512; ++i) table[i] = {buffer, 0, static_cast<uint16_t>(i == 511 ? ata::kPrdEndOfTable : 0)};
    check(!(dma_read(table_gpa, 0) & ata::kBmError), "a 32 MiB DMA read through a 64 KiB buffer");
    // The engine pointed the wrong way; started and stopped at once.
    table[0] = {buffer, 512, ata::kPrdEndOfTable};
    check(dma_read(table_gpa, 1, ata::kBmStart) & ata::kBmError, "a read with the engine set to write");
    for (uint32_t i = 0; i < 32; ++i) {
        dma_read(table_gpa, 1, ata::kBmToMemory | ata::kBmStart);
        outb(kBusMaster + ata::kBmCommand, ata::kBmToMemory | ata::kBmStart);
        outb(kBusMaster + ata::kBmCommand, 0);
    }
    stop_and_wait_for_hammering();
    check_device_sane();
}

// --- resets while transfers run, from this vCPU, while the others hammer --------------------------
void ide_reset_race() {
    start_hammering();
    const uint64_t table_gpa = (scratch_at(0) + 0xffff) & ~uint64_t{0xffff};
    auto* table = reinterpret_cast<ata::PrdEntry*>(table_gpa);
    for (uint32_t i = 0; i < 64; ++i) table[i] = {static_cast<uint32_t>(table_gpa + 0x10000), 0, static_cast<uint16_t>(i == 63 ? ata::kPrdEndOfTable : 0)};
    outl(kBusMaster + ata::kBmPrdTable, static_cast<uint32_t>(table_gpa));
    for (uint32_t round = 0; round < 200; ++round) {
        select(round % 2);
        lba48(round * 8, 8192);  // 4 MiB: long enough to be cut off
        out_register(ata::kStatusCommand, round % 3 ? ata::kCommandReadDmaExt : ata::kCommandReadSectorsExt);
        outb(kBusMaster + ata::kBmCommand, ata::kBmToMemory | ata::kBmStart);
        for (uint32_t i = 0; i < round % 5; ++i) alternate_status();
        outb(kControl, ata::kControlSrst);
        outb(kControl, 0);
        outb(kBusMaster + ata::kBmCommand, 0);
    }
    stop_and_wait_for_hammering();
    check_device_sane();
}

const Case kCases[] = {
    {"ide-garbage", ide_garbage},
    {"ide-pio-abuse", ide_pio_abuse},
    {"ide-dma-abuse", ide_dma_abuse},
    {"ide-reset-race", ide_reset_race},
};

}  // namespace

const CaseGroup kIdeCases = group(kCases);

}  // namespace hostile
