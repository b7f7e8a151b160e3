// Walking a mounted volume: every directory, file, key and value with its path, a count of what
// the volume holds (printed at mount), and a listing (txfs_ls).
#pragma once

#include <stdint.h>

#include "fs/txfs/guest_volume.h"

namespace hvkvm::guest::fs {

enum class Tree : uint8_t { kFiles, kRegistry };

// `parent` is the containing directory ("/...") or key ("" for the registry root, "A/B" below it).
using EntryVisitor = void (*)(void* context, const char* parent, const txfs::NodeInfo& entry);

// Visits every node of the tree depth first, parents before children, in committed state.
// Subtrees deeper than the path buffer are skipped and counted in *too_deep.
txfs::Status walk(GuestVolume& volume, Tree tree, EntryVisitor visit, void* context, uint32_t* too_deep = nullptr);

struct Inventory {
    uint32_t directories = 0;  // not counting the root
    uint32_t files = 0;
    uint64_t file_bytes = 0;
    uint32_t keys = 0;         // not counting the root
    uint32_t values = 0;
    uint32_t offline = 0;      // objects of any kind
    uint32_t too_deep = 0;
};
txfs::Status take_inventory(GuestVolume& volume, Inventory* inventory);

// One console line per node; values with their content (strings, numbers; binary as a size).
txfs::Status print_listing(GuestVolume& volume);

}  // namespace hvkvm::guest::fs
