// storage-io-bench: the host I/O reference for the storage benchmark, and storvsp's own overhead
// measured against it in the same run. Each workload runs on the same file twice, interleaved:
//   host     io_uring on the file with O_DIRECT, QD requests kept in flight (what fio's io_uring
//            engine does): the best this host gives;
//   storvsp  the same requests as EXECUTE_SRB packets from the in-process fake guest through the
//            real root-partition storvsp (rings in shared guest RAM, signals through eventfds,
//            io_uring with guest-RAM iovecs) - everything but a VM.
// Prints IOPS, MB/s, latency p50/p99 (submit to completion as the submitter sees it), medians and
// ranges over the runs, the ratio storvsp/host, and storvsp's signals and submissions per I/O.
//
//   storage-io-bench [--file PATH] [--size-mib N] [--seconds S] [--runs N] [WORKLOAD...]
//   WORKLOAD: randread-4k-qd1 randread-4k-qd32 randread-64k-qd8 randwrite-4k-qd32 read-1m-qd4 write-1m-qd4
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <liburing.h>

#include "storage/scsi/scsi_defs.h"
#include "storage/testing/storvsp_harness.h"

using namespace hvkvm::storage::testing;
namespace scsi = hvkvm::storage::scsi;
using Clock = std::chrono::steady_clock;

namespace {

struct Workload {
    std::string name;
    uint32_t block_bytes;
    uint32_t depth;
    bool random;
    bool write;
};

const std::vector<Workload> kWorkloads = {
    {"randread-4k-qd1", 4096, 1, true, false},       {"randread-4k-qd32", 4096, 32, true, false},
    {"randread-64k-qd8", 65536, 8, true, false},     {"randwrite-4k-qd32", 4096, 32, true, true},
    {"read-1m-qd4", 1 << 20, 4, false, false},       {"write-1m-qd4", 1 << 20, 4, false, true},
};

struct Result {
    double iops = 0;
    double mbps = 0;
    double p50_us = 0;
    double p99_us = 0;
    double guest_signals_per_io = 0;  // storvsp only
    double host_signals_per_io = 0;
    double submits_per_io = 0;
};

// Offsets for one run: random (aligned) or sequential, wrapping at the end of the file.
class Offsets {
public:
    // A seed per run and engine: neither engine reads blocks the other just read into the host's
    // device cache.
    Offsets(const Workload& workload, uint64_t file_bytes, uint64_t seed)
        : workload_(workload), blocks_(file_bytes / workload.block_bytes), sequential_(seed * 7919), random_(seed) {}
    uint64_t next() {
        const uint64_t block = workload_.random ? random_() % blocks_ : sequential_++ % blocks_;
        return block * workload_.block_bytes;
    }

private:
    const Workload& workload_;
    uint64_t blocks_;
    uint64_t sequential_;
    std::mt19937_64 random_;
};

Result summarize(std::vector<double>& latencies_us, uint64_t ios, double seconds, uint32_t block_bytes) {
    Result result;
    result.iops = static_cast<double>(ios) / seconds;
    result.mbps = result.iops * block_bytes / 1e6;
    if (!latencies_us.empty()) {
        std::sort(latencies_us.begin(), latencies_us.end());
        result.p50_us = latencies_us[latencies_us.size() / 2];
        result.p99_us = latencies_us[std::min(latencies_us.size() - 1, latencies_us.size() * 99 / 100)];
    }
    return result;
}

double microseconds(Clock::duration duration) { return std::chrono::duration<double, std::micro>(duration).count(); }

// --- host io_uring, O_DIRECT --------------------------------------------------------------------

Result run_host(const Workload& workload, const std::string& path, uint64_t file_bytes, double seconds, uint64_t seed) {
    const int fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open " + path + " with O_DIRECT failed");
    io_uring ring;
    if (io_uring_queue_init(64, &ring, 0) < 0) throw std::runtime_error("io_uring_queue_init failed");
    std::vector<void*> buffers(workload.depth);
    for (auto& buffer : buffers) {
        if (::posix_memalign(&buffer, 4096, workload.block_bytes) != 0) throw std::runtime_error("posix_memalign");
        std::memset(buffer, 0x5a, workload.block_bytes);
    }
    std::vector<iovec> segments(workload.depth);
    std::vector<Clock::time_point> started(workload.depth);
    Offsets offsets(workload, file_bytes, seed);
    auto submit = [&](uint32_t slot) {
        segments[slot] = iovec{buffers[slot], workload.block_bytes};
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        if (workload.write) io_uring_prep_writev(sqe, fd, &segments[slot], 1, offsets.next());
        else io_uring_prep_readv(sqe, fd, &segments[slot], 1, offsets.next());
        io_uring_sqe_set_data64(sqe, slot);
        started[slot] = Clock::now();
    };
    std::vector<double> latencies;
    uint64_t ios = 0;
    for (uint32_t slot = 0; slot < workload.depth; ++slot) submit(slot);
    const auto begin = Clock::now();
    const auto deadline = begin + std::chrono::duration<double>(seconds);
    uint32_t outstanding = workload.depth;
    bool stopping = false;
    while (outstanding != 0) {
        io_uring_submit_and_wait(&ring, 1);
        io_uring_cqe* cqe;
        unsigned head, seen = 0;
        const auto now = Clock::now();
        if (now >= deadline) stopping = true;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            const auto slot = static_cast<uint32_t>(cqe->user_data);
            if (cqe->res != static_cast<int>(workload.block_bytes)) throw std::runtime_error("host I/O failed");
            latencies.push_back(microseconds(now - started[slot]));
            ++ios;
            if (stopping) --outstanding;
            else submit(slot);
        }
        io_uring_cq_advance(&ring, seen);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
    io_uring_queue_exit(&ring);
    for (void* buffer : buffers) std::free(buffer);
    ::close(fd);
    return summarize(latencies, ios, elapsed, workload.block_bytes);
}

// --- storvsp through the fake guest ------------------------------------------------------------

GuestPacket srb_for(const Workload& workload, uint64_t offset, uint64_t gpa) {
    const uint64_t lba = offset / scsi::kBlockSize;
    const uint32_t blocks = workload.block_bytes / scsi::kBlockSize;
    std::vector<uint8_t> cdb(16, 0);
    cdb[0] = workload.write ? scsi::kWrite16 : scsi::kRead16;
    scsi::store_be64(&cdb[2], lba);
    scsi::store_be32(&cdb[10], blocks);
    return FakeStorvsc::srb(cdb, workload.write ? wire::kDataOut : wire::kDataIn, gpa, workload.block_bytes);
}

struct StorvspRig {
    explicit StorvspRig(const std::string& path)
        : host(HarnessOptions{2, 256, {DiskSpec{"bench", path, false, true, {}}}}), guest(host) {
        const uint32_t relid = guest.connect();
        if (relid == 0) throw std::runtime_error("no storvsp offer");
        channel = &guest.open(relid, 0, 64);
        guest.initialize(*channel);
        buffers = guest.allocate(32 * 256);  // 32 MiB: up to 32 x 1 MiB in flight
    }
    StorvspHost host;
    FakeStorvsc guest;
    GuestChannel* channel = nullptr;
    uint64_t buffers = 0;
};

Result run_storvsp(StorvspRig& rig, const Workload& workload, uint64_t file_bytes, double seconds, uint64_t seed) {
    const nlohmann::json before = rig.host.report();
    const uint64_t guest_signals_before = rig.channel->signals_sent;
    Offsets offsets(workload, file_bytes, seed);
    std::vector<Clock::time_point> started(workload.depth);
    std::vector<double> latencies;
    uint64_t ios = 0, next_id = 0;
    std::map<uint64_t, uint32_t> slot_of;  // transaction id -> slot
    auto submit = [&](uint32_t slot) {
        const uint64_t id = ++next_id;
        slot_of[id] = slot;
        started[slot] = Clock::now();
        const uint64_t gpa = rig.buffers + uint64_t{slot} * (1 << 20);
        if (!rig.guest.send(*rig.channel, srb_for(workload, offsets.next(), gpa), id, false))
            throw std::runtime_error("the guest's ring is full");
    };
    for (uint32_t slot = 0; slot < workload.depth; ++slot) submit(slot);
    rig.guest.publish(*rig.channel);
    const auto begin = Clock::now();
    const auto deadline = begin + std::chrono::duration<double>(seconds);
    uint32_t outstanding = workload.depth;
    bool stopping = false;
    std::vector<Answer> answers;
    while (outstanding != 0) {
        answers.clear();
        if (rig.guest.collect(*rig.channel, answers) == 0) {
            if (!rig.guest.wait_for_signal(*rig.channel, 5000)) throw std::runtime_error("storvsp stopped answering");
            continue;
        }
        const auto now = Clock::now();
        if (now >= deadline) stopping = true;
        for (const Answer& answer : answers) {
            if (answer.packet.srb.srb_status != wire::kSrbStatusSuccess) throw std::runtime_error("storvsp I/O failed");
            const uint32_t slot = slot_of.at(answer.transaction_id);
            slot_of.erase(answer.transaction_id);
            latencies.push_back(microseconds(now - started[slot]));
            ++ios;
            if (stopping) --outstanding;
            else submit(slot);
        }
        rig.guest.publish(*rig.channel);  // one index store and at most one signal per batch
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
    Result result = summarize(latencies, ios, elapsed, workload.block_bytes);
    const nlohmann::json after = rig.host.report();
    const double count = static_cast<double>(ios);
    result.guest_signals_per_io = (after["channels"][0]["guest_signals"].get<double>() -
                                   before["channels"][0]["guest_signals"].get<double>()) / count;
    result.host_signals_per_io = static_cast<double>(rig.channel->signals_sent - guest_signals_before) / count;
    result.submits_per_io = (after["io"]["submit_calls"].get<double>() - before["io"]["submit_calls"].get<double>()) / count;
    return result;
}

// --- driver -------------------------------------------------------------------------------------

void prepare_file(const std::string& path, uint64_t bytes) {
    struct stat status {};
    if (::stat(path.c_str(), &status) == 0 && static_cast<uint64_t>(status.st_size) == bytes) return;
    fmt::print("preparing {} ({} MiB of data, so reads reach the disk rather than holes)\n", path, bytes >> 20);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    std::vector<uint8_t> chunk(1 << 20);
    std::mt19937 random(7);
    for (auto& byte : chunk) byte = static_cast<uint8_t>(random());
    for (uint64_t offset = 0; offset < bytes; offset += chunk.size())
        if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(offset)) != static_cast<ssize_t>(chunk.size()))
            throw std::runtime_error("cannot fill " + path);
    ::fsync(fd);
    ::close(fd);
}

template <typename Field>
std::string median_range(std::vector<Result>& results, Field field, const char* format) {
    std::vector<double> values;
    for (const Result& result : results) values.push_back(result.*field);
    std::sort(values.begin(), values.end());
    return fmt::format(fmt::runtime(format), values[values.size() / 2], values.front(), values.back());
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string path = "storage-bench.img";
    uint64_t size_mib = 256;
    double seconds = 1.0;
    uint32_t runs = 3;
    std::vector<Workload> selected;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&] {
            if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
            return std::string(argv[++i]);
        };
        if (arg == "--file") path = value();
        else if (arg == "--size-mib") size_mib = std::stoull(value());
        else if (arg == "--seconds") seconds = std::stod(value());
        else if (arg == "--runs") runs = static_cast<uint32_t>(std::stoul(value()));
        else {
            auto found = std::find_if(kWorkloads.begin(), kWorkloads.end(), [&](const Workload& w) { return w.name == arg; });
            if (found == kWorkloads.end()) {
                fmt::print(stderr, "unknown workload or option {}\n", arg);
                return 2;
            }
            selected.push_back(*found);
        }
    }
    if (selected.empty()) selected = kWorkloads;
    const uint64_t file_bytes = size_mib << 20;
    prepare_file(path, file_bytes);

    StorvspRig rig(path);
    std::map<std::string, std::vector<Result>> host_results, storvsp_results;
    for (uint32_t run = 0; run < runs; ++run) {
        for (const Workload& workload : selected) {
            fmt::print("run {}/{} {:<18} host ...", run + 1, runs, workload.name);
            std::fflush(stdout);
            host_results[workload.name].push_back(run_host(workload, path, file_bytes, seconds, 2 * run + 1));
            fmt::print(" storvsp ...");
            std::fflush(stdout);
            storvsp_results[workload.name].push_back(run_storvsp(rig, workload, file_bytes, seconds, 2 * run + 2));
            fmt::print(" {:.0f} / {:.0f} IOPS\n", host_results[workload.name].back().iops, storvsp_results[workload.name].back().iops);
        }
    }

    fmt::print("\n{} runs of {:.1f} s per workload and engine, interleaved; medians [min - max]\n\n", runs, seconds);
    fmt::print("| workload | engine | IOPS | MB/s | p50 us | p99 us | storvsp/host IOPS | guest signals/IO | host signals/IO | submits/IO |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Workload& workload : selected) {
        auto& host = host_results[workload.name];
        auto& storvsp = storvsp_results[workload.name];
        std::vector<double> ratios;
        for (size_t i = 0; i < host.size(); ++i) ratios.push_back(storvsp[i].iops / host[i].iops);
        const char* iops = "{:.0f} [{:.0f} - {:.0f}]";
        const char* one = "{:.1f} [{:.1f} - {:.1f}]";
        fmt::print("| {} | host | {} | {} | {} | {} | | | | |\n", workload.name, median_range(host, &Result::iops, iops),
                   median_range(host, &Result::mbps, one), median_range(host, &Result::p50_us, one),
                   median_range(host, &Result::p99_us, one));
        fmt::print("| {} | storvsp | {} | {} | {} | {} | {:.2f} [{:.2f} - {:.2f}] | {:.3f} | {:.3f} | {:.3f} |\n", workload.name,
                   median_range(storvsp, &Result::iops, iops), median_range(storvsp, &Result::mbps, one),
                   median_range(storvsp, &Result::p50_us, one), median_range(storvsp, &Result::p99_us, one), median(ratios),
                   *std::min_element(ratios.begin(), ratios.end()), *std::max_element(ratios.begin(), ratios.end()),
                   median([&] { std::vector<double> v; for (auto& r : storvsp) v.push_back(r.guest_signals_per_io); return v; }()),
                   median([&] { std::vector<double> v; for (auto& r : storvsp) v.push_back(r.host_signals_per_io); return v; }()),
                   median([&] { std::vector<double> v; for (auto& r : storvsp) v.push_back(r.submits_per_io); return v; }()));
    }
    return 0;
}
