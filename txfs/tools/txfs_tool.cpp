// txfs: host tool for txfs images (a file holding a volume).
//
//   txfs mkfs IMAGE [--size BYTES] [--inodes N] [--log-blocks N]
//   txfs fsck IMAGE
//   txfs dump IMAGE
//   txfs ls   IMAGE [PATH]          files under PATH (default /)
//   txfs ls   IMAGE --registry [KEY] subkeys and values of KEY (default: the root key)
//   txfs cat  IMAGE PATH            a file's content to stdout
//   txfs put  IMAGE PATH            stdin into PATH, in one transaction (parents created)
//   txfs set  IMAGE KEY NAME TYPE VALUE   a registry value (TYPE: string|u32|u64), keys created
//
// Exit status: 0 success (fsck: clean); 1 fsck found inconsistencies, or the operation failed on a
// valid image (e.g. no such file); 2 bad arguments; 3 the image is missing, unreadable, too
// small or not a txfs volume.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/crc32c.h"
#include "core/volume.h"
#include "host/file_device.h"
#include "host/host_platform.h"
#include "host/volume_handle.h"

namespace {

using namespace txfs;
using txfs::host::FileDevice;
using txfs::host::HostPlatform;
using txfs::host::VolumePtr;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitBadImage = 3;

int usage() {
    std::fputs(
        "usage: txfs COMMAND IMAGE [ARGS]\n"
        "  mkfs IMAGE [--size BYTES[K|M|G]] [--inodes N] [--log-blocks N]\n"
        "  fsck IMAGE                      check; exit 1 if inconsistent\n"
        "  dump IMAGE                      superblock, layout, log records, contents\n"
        "  ls IMAGE [PATH]                 list a directory (default /)\n"
        "  ls IMAGE --registry [KEY]       list a registry key (default: root)\n"
        "  cat IMAGE PATH                  print a file\n"
        "  put IMAGE PATH                  write stdin to PATH in one transaction\n"
        "  set IMAGE KEY NAME TYPE VALUE   set a registry value (TYPE string|u32|u64)\n"
        "exit status: 0 ok, 1 inconsistent or operation failed, 2 usage, 3 bad or missing image\n",
        stderr);
    return kExitUsage;
}

std::optional<uint64_t> parse_size(const std::string& text) {
    if (text.empty()) return std::nullopt;
    size_t used = 0;
    uint64_t value;
    try {
        value = std::stoull(text, &used, 10);
    } catch (...) {
        return std::nullopt;
    }
    const std::string suffix = text.substr(used);
    const uint64_t scale = suffix.empty() ? 1 : suffix == "K" ? 1ull << 10 : suffix == "M" ? 1ull << 20 : suffix == "G" ? 1ull << 30 : 0;
    if (scale == 0 || value > UINT64_MAX / scale) return std::nullopt;
    return value * scale;
}

// An image opened and mounted for one command.
struct Opened {
    std::unique_ptr<FileDevice> device;
    HostPlatform platform{true};
    VolumePtr volume;
};

int open_image(const std::string& path, bool read_only, Opened& opened) {
    std::string error;
    opened.device = FileDevice::open(path, read_only, &error);
    if (!opened.device) {
        std::fprintf(stderr, "txfs: %s\n", error.c_str());
        return kExitBadImage;
    }
    MountOptions options;
    options.read_only = read_only;
    options.repair_worker = false;
    Volume* volume = nullptr;
    if (Status status = Volume::mount(*opened.device, opened.platform, options, &volume); status != Status::kOk) {
        std::fprintf(stderr, "txfs: %s: cannot mount: %s\n", path.c_str(), status_name(status));
        return status == Status::kBadImage ? kExitBadImage : kExitFailed;
    }
    opened.volume.reset(volume);
    return kExitOk;
}

int fail(const std::string& what, Status status) {
    std::fprintf(stderr, "txfs: %s: %s\n", what.c_str(), status_name(status));
    return kExitFailed;
}

int command_mkfs(const std::vector<std::string>& args) {
    if (args.empty()) return usage();
    const std::string& path = args[0];
    std::optional<uint64_t> size;
    FormatOptions options;
    std::random_device entropy;
    options.volume_id = (uint64_t{entropy()} << 32 | entropy()) | 1;
    for (size_t i = 1; i < args.size(); ++i) {
        if (i + 1 >= args.size()) return usage();
        const std::optional<uint64_t> value = parse_size(args[i + 1]);
        if (!value) return usage();
        if (args[i] == "--size") size = value;
        else if (args[i] == "--inodes" && *value <= UINT32_MAX) options.inode_count = static_cast<uint32_t>(*value);
        else if (args[i] == "--log-blocks" && *value <= UINT32_MAX) options.log_blocks = static_cast<uint32_t>(*value);
        else return usage();
        ++i;
    }
    bool inodes_given = false, log_given = false;
    for (const std::string& arg : args) inodes_given |= arg == "--inodes", log_given |= arg == "--log-blocks";
    std::string error;
    std::unique_ptr<FileDevice> device = size ? FileDevice::create(path, *size, &error) : FileDevice::open(path, false, &error);
    if (!device) {
        std::fprintf(stderr, "txfs: %s\n", error.c_str());
        return kExitBadImage;
    }
    // Defaults scale down for small images: a quarter of the blocks as inodes, an eighth as log.
    const uint64_t blocks = device->size_bytes() / kBlockSize;
    if (!inodes_given) options.inode_count = static_cast<uint32_t>(std::clamp<uint64_t>(blocks / 4 / kInodesPerBlock, 1, 64)) * kInodesPerBlock;
    if (!log_given) options.log_blocks = static_cast<uint32_t>(std::clamp<uint64_t>(blocks / 8, kMinLogBlocks, 1024));
    HostPlatform platform;
    if (Status status = Volume::format(*device, platform, options); status != Status::kOk) {
        std::fprintf(stderr, "txfs: mkfs %s: %s (%llu bytes; need room for 2 superblocks, 2 copies of the inode table, the log "
                             "and at least one data block; inodes a multiple of %u)\n",
                     path.c_str(), status_name(status), static_cast<unsigned long long>(device->size_bytes()), kInodesPerBlock);
        return status == Status::kInvalidArgument ? kExitUsage : kExitFailed;
    }
    std::printf("txfs: formatted %s: %llu blocks of %u bytes, %u inodes, %u log blocks\n", path.c_str(),
                static_cast<unsigned long long>(device->size_bytes() / kBlockSize), kBlockSize, options.inode_count, options.log_blocks);
    return kExitOk;
}

int command_fsck(const std::string& path) {
    Opened opened;
    if (int status = open_image(path, true, opened); status != kExitOk) return status;
    CheckSummary summary;
    opened.volume->check(
        [](void*, Finding finding, const char* message) {
            std::printf("%s: %s\n", finding == Finding::kError ? "error" : "note", message);
        },
        nullptr, &summary);
    std::printf("txfs fsck %s: %u error(s), %u inode(s) in use, %u block(s) in use, %u offline object(s), %llu log record(s) replayed in memory\n",
                path.c_str(), summary.errors, summary.inodes_in_use, summary.blocks_in_use, summary.offline_objects,
                static_cast<unsigned long long>(opened.volume->stats().records_replayed));
    return summary.errors == 0 ? kExitOk : kExitFailed;
}

// Lists the records between the log tail and the end of the log, read straight from the image.
void dump_log(FileDevice& device, const Superblock& superblock) {
    std::vector<uint8_t> block(kBlockSize);
    uint64_t lsn = superblock.log_tail;
    std::printf("log records from the tail (LSN %llu, epoch %llu):\n", static_cast<unsigned long long>(lsn),
                static_cast<unsigned long long>(superblock.log_epoch));
    for (uint32_t count = 0; count < superblock.log_blocks; ++count) {
        const uint64_t offset = uint64_t{superblock.log_start + lsn % superblock.log_blocks} * kBlockSize;
        if (device.read(offset, block.data(), kBlockSize) != Status::kOk) break;
        LogRecordHeader header;
        std::memcpy(&header, block.data(), sizeof(header));
        if (header.magic != kLogRecordMagic || header.lsn != lsn || header.epoch != superblock.log_epoch ||
            header.header_crc != crc32c_with_zero_field(&header, sizeof(header), offsetof(LogRecordHeader, header_crc)) ||
            header.block_count == 0 || header.block_count >= superblock.log_blocks) {
            break;
        }
        std::printf("  LSN %llu: transaction %llu, %u block(s), %u op(s), %u payload bytes\n", static_cast<unsigned long long>(lsn),
                    static_cast<unsigned long long>(header.transaction_id), header.block_count, header.op_count, header.payload_bytes);
        lsn += header.block_count;
    }
    std::printf("  end of log at LSN %llu\n", static_cast<unsigned long long>(lsn));
}

int command_dump(const std::string& path) {
    Opened opened;
    if (int status = open_image(path, true, opened); status != kExitOk) return status;
    const Superblock& s = opened.volume->superblock();
    std::printf("superblock: version %u, sequence %llu, volume id %016llx\n", s.version, static_cast<unsigned long long>(s.sequence),
                static_cast<unsigned long long>(s.volume_id));
    std::printf("  %llu blocks of %u bytes, %u inodes, next transaction %llu\n", static_cast<unsigned long long>(s.block_count),
                s.block_size, s.inode_count, static_cast<unsigned long long>(s.next_transaction_id));
    std::printf("layout (blocks): superblocks 0-1, bitmap %u+%u, inode table %u+%u, mirror %u+%u, log %u+%u, data %u-%llu\n",
                s.meta_start, s.bitmap_blocks, s.meta_start + s.bitmap_blocks, s.inode_table_blocks, s.mirror_start,
                s.bitmap_blocks + s.inode_table_blocks, s.log_start, s.log_blocks, s.data_start,
                static_cast<unsigned long long>(s.block_count - 1));
    dump_log(*opened.device, s);
    std::printf("contents (after replaying the log in memory):\n%s", txfs::host::dump_volume(*opened.volume).c_str());
    return kExitOk;
}

int command_ls(const std::vector<std::string>& args) {
    Opened opened;
    if (int status = open_image(args[0], true, opened); status != kExitOk) return status;
    const bool registry = args.size() > 1 && args[1] == "--registry";
    const std::string where = registry ? (args.size() > 2 ? args[2] : "") : (args.size() > 1 ? args[1] : "/");
    Status status;
    const auto entries = registry ? txfs::host::list_key(*opened.volume, nullptr, where, &status)
                                  : txfs::host::list_directory(*opened.volume, nullptr, where, &status);
    if (status != Status::kOk) return fail("ls " + where, status);
    for (const NodeInfo& entry : entries) {
        std::string line = fmt::format("{:<6} {:>10} {}", txfs::host::node_type_name(entry.type), entry.size, entry.name);
        if (entry.type == NodeType::kValue) {
            ValueType type;
            const std::string data = txfs::host::read_value(*opened.volume, nullptr, where, entry.name, &type, &status);
            line += fmt::format(" ({})", txfs::host::value_type_name(type));
            if (status == Status::kOk && type == ValueType::kU32) {
                uint32_t v;
                std::memcpy(&v, data.data(), 4);
                line += fmt::format(" = {}", v);
            } else if (status == Status::kOk && type == ValueType::kU64) {
                uint64_t v;
                std::memcpy(&v, data.data(), 8);
                line += fmt::format(" = {}", v);
            } else if (status == Status::kOk && type == ValueType::kString) {
                line += " = \"" + data + "\"";
            }
        }
        if (entry.offline) line += "  [OFFLINE]";
        std::printf("%s\n", line.c_str());
    }
    return kExitOk;
}

int command_cat(const std::vector<std::string>& args) {
    if (args.size() != 2) return usage();
    Opened opened;
    if (int status = open_image(args[0], true, opened); status != kExitOk) return status;
    Status status;
    const std::string content = txfs::host::read_whole_file(*opened.volume, nullptr, args[1], &status);
    if (status != Status::kOk) return fail("cat " + args[1], status);
    std::fwrite(content.data(), 1, content.size(), stdout);
    return kExitOk;
}

// Runs `body` in one transaction on a read-write mount and unmounts cleanly.
template <typename Body>
int in_transaction(const std::string& image, const std::string& what, Body&& body) {
    Opened opened;
    if (int status = open_image(image, false, opened); status != kExitOk) return status;
    Transaction* tx = nullptr;
    if (Status status = opened.volume->begin(&tx); status != Status::kOk) return fail(what, status);
    if (Status status = body(*opened.volume, tx); status != Status::kOk) {
        opened.volume->rollback(tx);
        return fail(what, status);
    }
    if (Status status = opened.volume->commit(tx); status != Status::kOk) return fail(what, status);
    Status status = opened.volume.release()->unmount();
    return status == Status::kOk ? kExitOk : fail(what, status);
}

int command_put(const std::vector<std::string>& args) {
    if (args.size() != 2) return usage();
    const std::string data{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    const std::string path = args[1];
    return in_transaction(args[0], "put " + path, [&](Volume& volume, Transaction* tx) {
        for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
            const Status status = volume.create_directory(tx, path.substr(0, slash).c_str());
            if (status != Status::kOk && status != Status::kAlreadyExists) return status;
        }
        Status status = volume.create_file(tx, path.c_str());
        if (status != Status::kOk && status != Status::kAlreadyExists) return status;
        if ((status = volume.truncate_file(tx, path.c_str(), 0)) != Status::kOk) return status;
        return volume.write_file(tx, path.c_str(), 0, data.data(), data.size());
    });
}

int command_set(const std::vector<std::string>& args) {
    if (args.size() != 5) return usage();
    const std::string &key = args[1], &name = args[2], &type_name = args[3], &text = args[4];
    std::string bytes;
    ValueType type;
    if (type_name == "string") {
        type = ValueType::kString;
        bytes = text;
    } else if (type_name == "u32" || type_name == "u64") {
        const std::optional<uint64_t> number = parse_size(text);
        if (!number || (type_name == "u32" && *number > UINT32_MAX)) return usage();
        type = type_name == "u32" ? ValueType::kU32 : ValueType::kU64;
        const uint32_t small = static_cast<uint32_t>(*number);
        bytes = type == ValueType::kU32 ? std::string(reinterpret_cast<const char*>(&small), 4)
                                        : std::string(reinterpret_cast<const char*>(&*number), 8);
    } else {
        return usage();
    }
    return in_transaction(args[0], "set " + key + ":" + name, [&](Volume& volume, Transaction* tx) {
        for (size_t slash = key.find('/'); ; slash = key.find('/', slash + 1)) {
            const Status status = volume.create_key(tx, key.substr(0, slash).c_str());
            if (status != Status::kOk && status != Status::kAlreadyExists) return status;
            if (slash == std::string::npos) break;
        }
        return volume.set_value(tx, key.c_str(), name.c_str(), type, bytes.data(), bytes.size());
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    if (command == "mkfs") return command_mkfs(args);
    if (command == "fsck" && args.size() == 1) return command_fsck(args[0]);
    if (command == "dump" && args.size() == 1) return command_dump(args[0]);
    if (command == "ls" && args.size() <= 3) return command_ls(args);
    if (command == "cat") return command_cat(args);
    if (command == "put") return command_put(args);
    if (command == "set") return command_set(args);
    return usage();
}
