// The host's side of the storage integration tests: prepares a disk image (a PatternHeader in
// sector 0 and the host's pattern in its region) and, after a run, checks that the guest's region
// holds the guest's pattern and the host's region is untouched. The pattern is the guest's own
// code (guest-kernel/lib/disk_pattern.h), compiled here for the host.
//
//   disk-pattern prepare IMAGE --size-mib N [--flush-kill | --read-only | --fault]
//   disk-pattern check IMAGE
//   disk-pattern mark-written IMAGE   (after a successful check: the next run reads the guest
//                                      region back, e.g. through the other bus)
//
// Exit status: 0 done / verified, 1 a check failed (the first bad sector is named), 2 usage or
// I/O error.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "lib/disk_pattern.h"

namespace {

namespace pattern = hvkvm::disk_pattern;
constexpr uint64_t kSector = pattern::kSectorBytes;
constexpr uint64_t kHostFirst = 1, kHostSectors = 4096;     // 2 MiB after the header
constexpr uint64_t kGuestFirst = 8192, kGuestSectors = 2048;  // 1 MiB at 4 MiB
constexpr uint64_t kHostSeed = 0x1de, kGuestSeed = 0x9e57;

[[noreturn]] void fail(const std::string& message, int status = 2) {
    std::cerr << "disk-pattern: " << message << "\n";
    std::exit(status);
}

class Image {
public:
    Image(const std::string& path, int flags) : path_(path), fd_(::open(path.c_str(), flags | O_CLOEXEC, 0644)) {
        if (fd_ < 0) fail(path + ": " + std::strerror(errno));
    }
    ~Image() { ::close(fd_); }
    void resize(uint64_t bytes) {
        if (::ftruncate(fd_, 0) < 0 || ::ftruncate(fd_, static_cast<off_t>(bytes)) < 0) fail(path_ + ": " + std::strerror(errno));
    }
    void write_at(uint64_t sector, const std::vector<uint8_t>& bytes) {
        if (::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(sector * kSector)) != static_cast<ssize_t>(bytes.size()))
            fail(path_ + ": write failed: " + std::strerror(errno));
    }
    std::vector<uint8_t> read_at(uint64_t sector, uint64_t sectors) {
        std::vector<uint8_t> bytes(sectors * kSector);
        if (::pread(fd_, bytes.data(), bytes.size(), static_cast<off_t>(sector * kSector)) != static_cast<ssize_t>(bytes.size()))
            fail(path_ + ": read failed (image too short?)");
        return bytes;
    }
    void sync() {
        if (::fsync(fd_) < 0) fail(path_ + ": fsync: " + std::strerror(errno));
    }

private:
    std::string path_;
    int fd_;
};

std::vector<uint8_t> pattern_sectors(uint64_t seed, uint64_t first, uint64_t sectors) {
    std::vector<uint8_t> bytes(sectors * kSector);
    for (uint64_t i = 0; i < sectors; ++i) pattern::fill_sector(bytes.data() + i * kSector, seed, first + i);
    return bytes;
}

int prepare(const std::string& path, uint64_t size_mib, uint64_t flags) {
    if ((size_mib << 20) / kSector < kGuestFirst + kGuestSectors) fail("--size-mib must be at least 5");
    Image image(path, O_RDWR | O_CREAT);
    image.resize(size_mib << 20);
    pattern::PatternHeader header{};
    std::memcpy(header.magic, pattern::kPatternMagic, sizeof header.magic);
    header.host_seed = kHostSeed, header.host_first = kHostFirst, header.host_sectors = kHostSectors;
    header.guest_seed = kGuestSeed, header.guest_first = kGuestFirst, header.guest_sectors = kGuestSectors;
    header.flags = flags;
    std::vector<uint8_t> sector0(kSector);
    std::memcpy(sector0.data(), &header, sizeof header);
    image.write_at(0, sector0);
    image.write_at(kHostFirst, pattern_sectors(kHostSeed, kHostFirst, kHostSectors));
    image.sync();
    std::cout << path << ": " << size_mib << " MiB, host pattern in sectors " << kHostFirst << ".." << kHostFirst + kHostSectors - 1
              << ", guest region " << kGuestFirst << ".." << kGuestFirst + kGuestSectors - 1
              << (flags & pattern::kFlushKillScenario ? " (flush-kill scenario)" : "")
              << (flags & pattern::kExpectReadOnly ? " (to be attached read-only)" : "")
              << (flags & pattern::kFaultScenario ? " (host write fault scenario)" : "") << "\n";
    return 0;
}

// The first sector of [first, first + sectors) that does not hold the pattern, or -1.
int64_t first_mismatch(Image& image, uint64_t seed, uint64_t first, uint64_t sectors) {
    const std::vector<uint8_t> bytes = image.read_at(first, sectors);
    for (uint64_t i = 0; i < sectors; ++i)
        if (!pattern::sector_matches(bytes.data() + i * kSector, seed, first + i)) return static_cast<int64_t>(first + i);
    return -1;
}

int check(const std::string& path) {
    Image image(path, O_RDONLY);
    pattern::PatternHeader header{};
    std::memcpy(&header, image.read_at(0, 1).data(), sizeof header);
    if (!pattern::header_valid(header)) fail(path + ": no pattern header in sector 0 (not prepared?)", 1);
    if (const int64_t bad = first_mismatch(image, header.host_seed, header.host_first, header.host_sectors); bad >= 0)
        fail(path + ": sector " + std::to_string(bad) + " of the host's region changed", 1);
    if (header.flags & pattern::kExpectReadOnly) {
        const std::vector<uint8_t> bytes = image.read_at(header.guest_first, header.guest_sectors);
        for (uint64_t i = 0; i < bytes.size(); ++i)
            if (bytes[i] != 0) fail(path + ": sector " + std::to_string(header.guest_first + i / kSector) + " of a read-only image was written", 1);
        std::cout << path << ": read-only image unchanged\n";
        return 0;
    }
    if (const int64_t bad = first_mismatch(image, header.guest_seed, header.guest_first, header.guest_sectors); bad >= 0)
        fail(path + ": sector " + std::to_string(bad) + " does not hold the guest's pattern", 1);
    std::cout << path << ": guest pattern verified in sectors " << header.guest_first << ".."
              << header.guest_first + header.guest_sectors - 1 << ", host pattern intact\n";
    return 0;
}

// The guest region holds the guest's pattern (checked first): the next run is to read it back.
int mark_written(const std::string& path) {
    if (const int status = check(path); status != 0) return status;
    Image image(path, O_RDWR);
    std::vector<uint8_t> sector0 = image.read_at(0, 1);
    pattern::PatternHeader header{};
    std::memcpy(&header, sector0.data(), sizeof header);
    header.flags = pattern::kGuestRegionWritten;
    std::memcpy(sector0.data(), &header, sizeof header);
    image.write_at(0, sector0);
    image.sync();
    std::cout << path << ": marked: the next run reads the guest region back\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "check") return check(args[1]);
    if (args.size() == 2 && args[0] == "mark-written") return mark_written(args[1]);
    if (args.size() >= 4 && args.size() <= 5 && args[0] == "prepare" && args[2] == "--size-mib") {
        uint64_t flags = 0;
        if (args.size() == 5 && args[4] == "--flush-kill") flags = pattern::kFlushKillScenario;
        else if (args.size() == 5 && args[4] == "--read-only") flags = pattern::kExpectReadOnly;
        else if (args.size() == 5 && args[4] == "--fault") flags = pattern::kFaultScenario;
        else if (args.size() == 5) fail("unknown option " + args[4]);
        return prepare(args[1], std::stoull(args[3]), flags);
    }
    fail("usage: disk-pattern prepare IMAGE --size-mib N [--flush-kill | --read-only | --fault] | disk-pattern check IMAGE"
         " | disk-pattern mark-written IMAGE");
}
