#include "bench/io_bench.h"

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "block/block.h"
#include "drivers/ata.h"
#include "drivers/storvsc/storvsc.h"
#include "drivers/ram_disk.h"
#include "kernel/console.h"
#include "kernel/host_interface.h"
#include "kernel/panic.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "lib/random.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::bench {
namespace {

using block::Io;
using block::IoStatus;
using block::Operation;

constexpr uint32_t kMaxBlockBytes = 1 << 20;
constexpr uint32_t kMaxQueueDepth = 64;
constexpr uint64_t kMaxRegionBytes = uint64_t{1} << 30;
constexpr uint64_t kRamDiskBytes = 64ull << 20;
constexpr uint64_t kStuckNs = 30'000'000'000ull;  // an I/O slower than this ends the run as failed

struct Parameters {
    StringView device = "ata0";
    bool random = false;
    Operation operation = Operation::kRead;
    uint32_t block_bytes = 4096;
    uint32_t queue_depth = 1;
    uint32_t threads = 1;
    uint64_t duration_ns = 2'000'000'000;
    uint64_t count = 0;         // 0: run for duration_ns
    uint64_t region_bytes = 0;  // 0: the whole device, up to kMaxRegionBytes
};

// --- parsing --------------------------------------------------------------------------------------

// "4096", "4k", "64k", "1m".
bool parse_size(StringView text, uint64_t& bytes) {
    uint64_t scale = 1;
    if (!text.empty() && (text[text.size() - 1] == 'k' || text[text.size() - 1] == 'm')) {
        scale = text[text.size() - 1] == 'k' ? 1024 : 1024 * 1024;
        text = text.substr(0, text.size() - 1);
    }
    if (!parse_decimal(text, bytes)) return false;
    bytes *= scale;
    return true;
}

// Reads io.KEY=VALUE words into `p`; false (after saying which) on a bad value.
bool parse(const Cmdline& cmdline, Parameters& p) {
    bool ok = true;
    const auto complain = [&](StringView word) {
        kprint("bench=io: bad parameter %.*s\n", static_cast<int>(word.size()), word.data());
        ok = false;
    };
    cmdline.for_each_word([&](StringView word) {
        if (!word.starts_with("io.")) return;
        const size_t equals = word.find('=');
        const StringView key = word.substr(3, equals == StringView::npos ? StringView::npos : equals - 3);
        const StringView value = equals == StringView::npos ? StringView() : word.substr(equals + 1);
        uint64_t number = 0;
        if (key == "device" && !value.empty()) p.device = value;
        else if (key == "pattern" && (value == "seq" || value == "rand")) p.random = value == "rand";
        else if (key == "op" && (value == "read" || value == "write"))
            p.operation = value == "read" ? Operation::kRead : Operation::kWrite;
        else if (key == "bs" && parse_size(value, number) && number >= block::kSectorSize && number <= kMaxBlockBytes &&
                 number % block::kSectorSize == 0)
            p.block_bytes = static_cast<uint32_t>(number);
        else if (key == "qd" && parse_decimal(value, number) && number >= 1 && number <= kMaxQueueDepth)
            p.queue_depth = static_cast<uint32_t>(number);
        else if (key == "threads" && parse_decimal(value, number) && number >= 1 && number <= smp::online_count())
            p.threads = static_cast<uint32_t>(number);
        else if (key == "time_ms" && parse_decimal(value, number) && number >= 1 && number <= 3'600'000)
            p.duration_ns = number * 1'000'000;
        else if (key == "count" && parse_decimal(value, number) && number >= 1) p.count = number;
        else if (key == "region_mib" && parse_decimal(value, number) && number >= 1 && number <= (kMaxRegionBytes >> 20))
            p.region_bytes = number << 20;
        else complain(word);
    });
    return ok;
}

// --- latency histogram ------------------------------------------------------------------------------

// Log-linear: 32 buckets per power of two (about 3 % wide), exact below 32 ns.
class Histogram {
public:
    static constexpr uint32_t kSubBits = 5;
    static constexpr uint32_t kBuckets = (64 - kSubBits + 1) << kSubBits;

    void add(uint64_t value) { ++counts_[index_of(value)]; }
    void merge(const Histogram& other) {
        for (uint32_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    }
    // The value below which `per_mille` / 1000 of the samples lie (a bucket's midpoint).
    uint64_t percentile(uint32_t per_mille) const {
        uint64_t total = 0;
        for (uint64_t count : counts_) total += count;
        if (total == 0) return 0;
        const uint64_t rank = (total * per_mille + 999) / 1000;
        uint64_t seen = 0;
        for (uint32_t i = 0; i < kBuckets; ++i)
            if ((seen += counts_[i]) >= rank) return (lower_bound(i) + lower_bound(i + 1)) / 2;
        return lower_bound(kBuckets - 1);
    }

private:
    static uint32_t index_of(uint64_t value) {
        if (value < (1u << kSubBits)) return static_cast<uint32_t>(value);
        const uint32_t exponent = 63 - static_cast<uint32_t>(__builtin_clzll(value));
        const uint32_t sub = static_cast<uint32_t>(value >> (exponent - kSubBits)) & ((1u << kSubBits) - 1);
        return ((exponent - kSubBits + 1) << kSubBits) + sub;
    }
    static uint64_t lower_bound(uint32_t index) {
        if (index < (1u << kSubBits)) return index;
        const uint32_t exponent = (index >> kSubBits) + kSubBits - 1;
        const uint64_t sub = index & ((1u << kSubBits) - 1);
        return (uint64_t{1} << exponent) | (sub << (exponent - kSubBits));
    }

    uint64_t counts_[kBuckets] = {};
};

// --- the workload -------------------------------------------------------------------------------

struct Run {
    const Parameters* parameters;
    block::Device* device;
    uint64_t region_sectors;
    uint64_t submitted;  // shared count against Parameters::count (atomic)
    uint64_t end_ns;     // set before `started`
    // The start gate: each worker counts itself ready once its buffers are filled and waits for
    // `started`, so that neither the clock nor the measurement window includes their set-up
    // (32 MiB of buffers is thousands of page-fault exits). Both atomic.
    uint32_t ready;
    bool started;
};

struct Worker {
    Run* run;
    uint32_t index;
    uint64_t ios = 0;
    uint64_t errors = 0;
    uint32_t first_error = 0;  // the driver's detail of the first failure
    bool out_of_memory = false;
    uint64_t started_ns = 0, finished_ns = 0;
    Histogram latency;
};

// Sequential offsets: the next block of this thread's stripe of the region, wrapping.
class Stripe {
public:
    Stripe(const Run& run, uint32_t index)
        : sectors_(run.parameters->block_bytes / block::kSectorSize),
          blocks_(run.region_sectors / sectors_ / run.parameters->threads),
          first_block_(blocks_ * index) {}
    uint64_t next() { return (first_block_ + next_++ % blocks_) * sectors_; }

private:
    uint64_t sectors_, blocks_, first_block_;  // blocks_ >= 1: the region holds a block per thread
    uint64_t next_ = 0;
};

// One buffer per I/O slot: QD 32 of 1 MiB is 32 MiB, more than the allocator's largest block
// (4 MiB), so the slots are not one allocation.
class SlotBuffers {
public:
    SlotBuffers(uint32_t slots, uint32_t bytes) : slots_(slots) {
        for (uint32_t i = 0; i < slots_; ++i) {
            buffers_[i] = static_cast<uint8_t*>(mm::allocate(bytes, 4096));
            if (buffers_[i]) memset(buffers_[i], 0xa5, bytes);
            else ok_ = false;
        }
    }
    ~SlotBuffers() {
        for (uint32_t i = 0; i < slots_; ++i) mm::free(buffers_[i]);
    }
    SlotBuffers(const SlotBuffers&) = delete;
    SlotBuffers& operator=(const SlotBuffers&) = delete;
    bool ok() const { return ok_; }
    uint8_t* operator[](uint32_t slot) const { return buffers_[slot]; }

private:
    uint32_t slots_;
    bool ok_ = true;
    uint8_t* buffers_[kMaxQueueDepth] = {};
};

bool take_one(Run& run) {
    const uint64_t limit = run.parameters->count;
    if (limit == 0) return time::now_ns() < run.end_ns;
    return __atomic_fetch_add(&run.submitted, 1, __ATOMIC_RELAXED) < limit;
}

void run_worker(void* argument) {
    Worker& worker = *static_cast<Worker*>(argument);
    Run& run = *worker.run;
    const Parameters& p = *run.parameters;
    SlotBuffers buffers(p.queue_depth, p.block_bytes);
    worker.out_of_memory = !buffers.ok();
    __atomic_add_fetch(&run.ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&run.started, __ATOMIC_ACQUIRE)) sched::yield();
    if (worker.out_of_memory) return;
    Io ios[kMaxQueueDepth];
    Stripe stripe(run, worker.index);
    Random random(0x10be5 + worker.index);
    block::CompletionPort port;
    const auto submit = [&](Io& io, uint32_t slot) {
        io = Io{};
        io.operation = p.operation;
        io.sectors = p.block_bytes / block::kSectorSize;
        io.sector = p.random ? random.below(run.region_sectors / io.sectors) * io.sectors : stripe.next();
        io.buffer = buffers[slot];
        io.context = reinterpret_cast<void*>(uint64_t{slot});
        block::submit(port, *run.device, io);
    };
    worker.started_ns = time::now_ns();
    for (uint32_t slot = 0; slot < p.queue_depth && take_one(run); ++slot) submit(ios[slot], slot);
    while (port.outstanding() > 0) {
        Io* done = port.wait(time::now_ns() + kStuckNs);
        if (!done) panic("bench=io: an I/O did not complete in %lu s", kStuckNs / 1'000'000'000);
        const uint64_t now = time::now_ns();
        worker.latency.add(now - done->submit_ns);
        ++worker.ios;
        if (done->status != IoStatus::kOk && worker.errors++ == 0) worker.first_error = done->device_error;
        if (take_one(run)) submit(*done, static_cast<uint32_t>(reinterpret_cast<uint64_t>(done->context)));
    }
    worker.finished_ns = time::now_ns();
}

const char* device_mode(const block::Device& device) {
    for (uint32_t i = 0; i < 2; ++i)
        if (const ata::DriveInfo* drive = ata::drive(i); drive && drive->device == &device) return ata::mode_name(drive->mode);
    if (storvsc::find_lun(device)) return "vmbus";
    return "-";
}

// Tenths (or hundredths) by integer arithmetic: the kernel has no floating point.
void print_result(const Parameters& p, const block::Device& device, const Worker* workers, const block::DeviceStats& before,
                  const block::DeviceStats& after) {
    uint64_t ios = 0, errors = 0, started = ~0ull, finished = 0;
    Histogram latency;
    for (uint32_t i = 0; i < p.threads; ++i) {
        ios += workers[i].ios;
        errors += workers[i].errors;
        started = workers[i].started_ns < started ? workers[i].started_ns : started;
        finished = workers[i].finished_ns > finished ? workers[i].finished_ns : finished;
        latency.merge(workers[i].latency);
    }
    const uint64_t elapsed = finished > started ? finished - started : 1;
    const uint64_t iops_tenths = ios * 10'000'000'000ull / elapsed;
    const uint64_t mbps_hundredths = ios * p.block_bytes * 100'000ull / elapsed;
    const block::DeviceInfo info = block::info(device);
    kprint("io-result device=%s mode=%s pattern=%s op=%s bs=%u qd=%u threads=%u ios=%lu errors=%lu elapsed_ms=%lu "
           "iops=%lu.%lu mbps=%lu.%02lu lat_p50_us=%lu lat_p99_us=%lu interrupts=%lu interrupt_completions=%lu "
           "polled_completions=%lu inline_completions=%lu commands=%lu merged=%lu split=%lu polls_given_way=%lu\n",
           info.name, device_mode(device), p.random ? "rand" : "seq", p.operation == Operation::kRead ? "read" : "write",
           p.block_bytes, p.queue_depth, p.threads, ios, errors, elapsed / 1'000'000, iops_tenths / 10, iops_tenths % 10,
           mbps_hundredths / 100, mbps_hundredths % 100, latency.percentile(500) / 1000, latency.percentile(990) / 1000,
           after.interrupts - before.interrupts, after.interrupt_completions - before.interrupt_completions,
           after.polled_completions - before.polled_completions, after.inline_completions - before.inline_completions,
           after.commands - before.commands, after.merged_ios - before.merged_ios, after.split_ios - before.split_ios,
           after.polls_given_way - before.polls_given_way);
}

block::Device* choose_device(StringView name, ram_disk::RamDisk*& ram) {
    if (name == "ram") {
        ram_disk::Options options;
        options.name = "ram";
        options.sectors = kRamDiskBytes / block::kSectorSize;
        options.limits.max_sectors = 2048;
        options.limits.max_segments = 257;
        options.limits.queue_depth = kMaxQueueDepth;
        ram = ram_disk::create(options);
        return ram ? &ram_disk::device(*ram) : nullptr;
    }
    // By bus: the first disk on it.
    if (name == "ide") return ata::drive(0) ? ata::drive(0)->device : nullptr;
    if (name == "vmbus") {
        const storvsc::Controller* controller = storvsc::controller_at(0);
        const storvsc::LunInfo* first = controller ? storvsc::lun(*controller, 0) : nullptr;
        return first ? first->device : nullptr;
    }
    return block::find_device(name);
}

}  // namespace

bool run_io_benchmark(const Cmdline& cmdline) {
    Parameters p;
    if (!parse(cmdline, p)) return false;
    ram_disk::RamDisk* ram = nullptr;
    block::Device* device = choose_device(p.device, ram);
    if (!device) {
        kprint("bench=io: no block device \"%.*s\"\n", static_cast<int>(p.device.size()), p.device.data());
        return false;
    }
    const uint64_t device_bytes = block::info(*device).sectors * block::kSectorSize;
    uint64_t region = p.region_bytes ? p.region_bytes : (device_bytes < kMaxRegionBytes ? device_bytes : kMaxRegionBytes);
    if (region > device_bytes || region < uint64_t{p.block_bytes} * p.threads) {
        kprint("bench=io: the region (%lu MiB) must fit the device (%lu MiB) and hold a block per thread\n", region >> 20,
               device_bytes >> 20);
        ram_disk::destroy(ram);
        return false;
    }
    Run run{&p, device, region / block::kSectorSize, 0, 0, 0, false};
    static Worker workers[abi::kMaxVcpus];
    sched::Thread* threads[abi::kMaxVcpus] = {};
    uint32_t created = 0;
    bool ok = true;
    for (uint32_t i = 0; i < p.threads; ++i) {
        workers[i] = Worker{};
        workers[i].run = &run;
        workers[i].index = i;
        sched::ThreadOptions options;
        options.name = "io-bench";
        options.ideal_cpu = i % smp::online_count();
        options.affinity = 1ull << options.ideal_cpu;
        options.stack_bytes = 32 * 1024;
        threads[i] = sched::create_thread(run_worker, &workers[i], options);
        ok &= threads[i] != nullptr;
        created += threads[i] != nullptr;
    }
    while (__atomic_load_n(&run.ready, __ATOMIC_ACQUIRE) < created) sched::yield();
    open_measurement_window();  // KVM's exits and interrupts of the workload alone
    const block::DeviceStats before = block::stats(*device);
    run.end_ns = time::now_ns() + p.duration_ns;
    __atomic_store_n(&run.started, true, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < p.threads; ++i) {
        if (!threads[i]) continue;
        sched::join(threads[i]);
        ok &= !workers[i].out_of_memory;
    }
    const block::DeviceStats after = block::stats(*device);
    close_measurement_window();
    if (ok) print_result(p, *device, workers, before, after);
    uint64_t errors = 0;
    for (uint32_t i = 0; i < p.threads; ++i) {
        errors += workers[i].errors;
        if (workers[i].errors) kprint("bench=io: thread %u: %lu failed I/Os (first: device error %#x)\n", i, workers[i].errors, workers[i].first_error);
        if (workers[i].out_of_memory) kprint("bench=io: thread %u: no memory for its buffers\n", i);
    }
    ram_disk::destroy(ram);
    return ok && errors == 0;
}

}  // namespace hvkvm::guest::bench
