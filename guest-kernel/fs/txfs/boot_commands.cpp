#include "fs/txfs/boot_commands.h"

#include <new>

#include "block/block.h"
#include "fs/txfs/guest_volume.h"
#include "fs/txfs/inventory.h"
#include "fs/txfs/update.h"
#include "kernel/console.h"

namespace hvkvm::guest::fs {
namespace {

constexpr uint64_t kNsPerMs = 1'000'000;

void list_block_devices() {
    kprint("txfs: block devices:");
    for (uint32_t i = 0; i < block::device_count(); ++i) kprint(" %s", block::info(block::device_at(i)).name);
    kprint("%s\n", block::device_count() ? "" : " none");
}

bool print_mount_summary(GuestVolume& volume, const char* disk) {
    Inventory inventory;
    const txfs::Status status = take_inventory(volume, &inventory);
    if (status != txfs::Status::kOk) {
        kprint("txfs: listing %s failed: %s\n", disk, txfs::status_name(status));
        return false;
    }
    const txfs::VolumeStats stats = volume.volume().stats();
    kprint("txfs: mounted %s in %lu ms: %lu log record(s) replayed, next transaction id %lu; %u file(s) (%lu bytes) in "
           "%u directories, %u key(s), %u value(s), %u offline\n",
           disk, volume.mount_duration_ns() / kNsPerMs, stats.records_replayed,
           volume.volume().superblock().next_transaction_id, inventory.files, inventory.file_bytes,
           inventory.directories, inventory.keys, inventory.values, inventory.offline);
    return true;
}

void print_finding(void*, txfs::Finding finding, const char* message) {
    kprint("txfs fsck: %s: %s\n", finding == txfs::Finding::kError ? "error" : "note", message);
}

bool run_fsck(GuestVolume& volume) {
    txfs::CheckSummary summary;
    const txfs::Status status = volume.volume().check(print_finding, nullptr, &summary);
    kprint("txfs fsck: %s: %u error(s), %u note(s), %u inodes and %u blocks in use, %u offline\n",
           status == txfs::Status::kOk && summary.errors == 0 ? "clean" : "NOT CLEAN", summary.errors, summary.notes,
           summary.inodes_in_use, summary.blocks_in_use, summary.offline_objects);
    return status == txfs::Status::kOk && summary.errors == 0;
}

bool verify_update(GuestVolume& volume, uint64_t* version) {
    InstalledUpdate installed;
    const txfs::Status status = read_installed_update(volume, &installed);
    if (status != txfs::Status::kOk) {
        kprint("txfs verify: reading the update failed: %s\n", txfs::status_name(status));
        return false;
    }
    *version = installed.version;
    if (!installed.consistent) {
        kprint("txfs verify: INCONSISTENT: %s\n", installed.problem);
        return false;
    }
    if (installed.present)
        kprint("txfs verify: update version %lu installed whole (%u components)\n", installed.version, kComponentCount);
    else
        kprint("txfs verify: no update installed, and nothing of one present\n");
    return true;
}

bool install(GuestVolume& volume, uint64_t version, bool progress) {
    UpdateOptions options;
    options.print_progress = progress;
    UpdateResult result;
    const txfs::Status status = install_update(volume, version, options, &result);
    if (status != txfs::Status::kOk) {
        kprint("txfs update: version %lu FAILED: %s (rolled back)\n", version, txfs::status_name(status));
        return false;
    }
    // The kill test takes this line as the acknowledgement: the version is durable.
    kprint("txfs update: version %lu committed (%lu bytes, %lu flush(es), %lu us)\n", version, result.bytes,
           result.device_flushes, result.commit_ns / 1000);
    return true;
}

// txfs_update=N: N versions after the installed one, or forever for 0 / `loop`.
bool run_update_loop(GuestVolume& volume, uint64_t installed, StringView count_text) {
    uint64_t count = 0;
    for (size_t i = 0; i < count_text.size() && count_text[i] >= '0' && count_text[i] <= '9' && count < 1'000'000; ++i)
        count = count * 10 + static_cast<uint64_t>(count_text[i] - '0');
    kprint("txfs update: starting after version %lu, %s%lu\n", installed, count ? "versions: " : "until killed",
           count);
    for (uint64_t done = 0; count == 0 || done < count; ++done)
        if (!install(volume, installed + done + 1, false)) return false;
    return true;
}

bool run_commands(GuestVolume& volume, const Cmdline& cmdline, const char* disk) {
    if (!print_mount_summary(volume, disk)) return false;
    if (cmdline.has("txfs_fsck") && !run_fsck(volume)) return false;
    uint64_t version = 0;
    // Every command that installs needs the installed version, and refuses to build on a broken one.
    const bool installs = cmdline.has("txfs_demo") || cmdline.has("txfs_update");
    if ((cmdline.has("txfs_verify") || installs) && !verify_update(volume, &version)) return false;
    if (cmdline.has("txfs_demo")) {
        kprint("txfs demo: installing update version %lu: %u components, one transaction\n", version + 1,
               kComponentCount);
        if (!install(volume, ++version, true)) return false;
    }
    bool found = false;
    const StringView loop = cmdline.value("txfs_update", &found);
    if (found && !run_update_loop(volume, version, loop)) return false;
    if (cmdline.has("txfs_ls") && print_listing(volume) != txfs::Status::kOk) return false;
    return true;
}

}  // namespace

bool run_txfs_boot_commands(const Cmdline& cmdline) {
    bool found = false;
    const StringView name = cmdline.value("txfs", &found);
    if (!found) return true;
    char disk[32] = {};
    for (size_t i = 0; i < name.size() && i + 1 < sizeof(disk); ++i) disk[i] = name[i];
    block::Device* device = block::find_device(name);
    if (!device) {
        kprint("txfs=%s: no such block device\n", disk);
        list_block_devices();
        return false;
    }
    auto* volume = new (std::nothrow) GuestVolume(*device);
    if (!volume) return false;
    bool ok = false;
    const txfs::Status status = volume->mount();
    if (status != txfs::Status::kOk) {
        kprint("txfs: mounting %s failed: %s\n", disk, txfs::status_name(status));
    } else {
        ok = run_commands(*volume, cmdline, disk);
        const txfs::Status unmounted = volume->unmount();
        kprint("txfs: %s unmounted: %s\n", disk, txfs::status_name(unmounted));
        ok = ok && unmounted == txfs::Status::kOk;
    }
    delete volume;
    return ok;
}

}  // namespace hvkvm::guest::fs
