// A Windows-Update-like package: one transaction replaces a fixed set of components, each a file
// under /Windows/System32 and a registry value, all carrying the package's version, and records
// the version in the registry. Either the whole update is on the volume after a crash or none of
// it: the demo (txfs_demo) and the VM kill test (txfs_update=) rely on exactly this.
//
// Layout (the kill test's host-side check, tests/integration/txfs_kill.sh, reads the same):
//   /Windows/System32/<component>.dll    first line "hvkvm update version=V component=<component>"
//   Software\Hvkvm\Update                Version (u64) = V, Components (u32) = kComponentCount
//   Software\Hvkvm\Update\Components     <component> (string) = "V"
#pragma once

#include <stdint.h>

#include "fs/txfs/guest_volume.h"

namespace hvkvm::guest::fs {

inline constexpr uint32_t kComponentCount = 6;

struct UpdateOptions {
    bool print_progress = false;  // a line per component and per phase
};

struct UpdateResult {
    uint64_t commit_ns = 0;       // begin to durable commit
    uint64_t device_flushes = 0;  // flushes the disk saw during the transaction
    uint64_t bytes = 0;           // file bytes written
};

// Installs `version` over whatever is installed (creating directories and keys the first time).
// On failure the transaction is rolled back; nothing of this version is on the volume.
txfs::Status install_update(GuestVolume& volume, uint64_t version, const UpdateOptions& options, UpdateResult* result);

struct InstalledUpdate {
    bool present = false;   // the Version value exists
    uint64_t version = 0;
    bool consistent = false;
    char problem[160] = {};  // what is wrong, if not consistent
};

// Reads the installed update and checks that every component file (whole content) and value
// carries the installed version, or that none exists when no version is installed.
txfs::Status read_installed_update(GuestVolume& volume, InstalledUpdate* installed);

}  // namespace hvkvm::guest::fs
