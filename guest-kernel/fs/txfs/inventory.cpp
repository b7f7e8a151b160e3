#include "fs/txfs/inventory.h"

#include "core/memory.h"
#include "kernel/console.h"
#include "lib/string.h"

namespace hvkvm::guest::fs {
namespace {

constexpr size_t kMaxPath = 1024;

struct Walk {
    GuestVolume& volume;
    Tree tree;
    EntryVisitor visit;
    void* context;
    uint32_t too_deep = 0;
    char path[kMaxPath] = {};  // the node being listed
    size_t length = 0;
};

void collect(void* context, const txfs::NodeInfo& entry) {
    auto& children = *static_cast<txfs::Vector<txfs::NodeInfo>*>(context);
    if (!children.push_back(entry)) return;  // out of memory: the walk sees fewer children
}

bool is_container(txfs::NodeType type) { return type == txfs::NodeType::kDirectory || type == txfs::NodeType::kKey; }

// Appends "/name" (or "name" under the registry root) to the walk's path; false if it does not fit.
bool enter(Walk& walk, const txfs::NodeInfo& child) {
    const bool root = walk.tree == Tree::kFiles ? walk.length == 1 : walk.length == 0;
    const size_t separator = root ? 0 : 1;
    if (walk.length + separator + child.name_length + 1 > kMaxPath) return false;
    if (separator) walk.path[walk.length++] = '/';
    memcpy(walk.path + walk.length, child.name, child.name_length);
    walk.length += child.name_length;
    walk.path[walk.length] = '\0';
    return true;
}

txfs::Status walk_children(Walk& walk) {
    // Listing calls back under the volume's lock: gather the children first, then descend.
    txfs::Vector<txfs::NodeInfo> children(walk.volume.platform());
    txfs::Volume& volume = walk.volume.volume();
    const txfs::Status status = walk.tree == Tree::kFiles
                                    ? volume.list_directory(nullptr, walk.path, collect, &children)
                                    : volume.list_key(nullptr, walk.path, collect, &children);
    if (status != txfs::Status::kOk) return status;
    for (const txfs::NodeInfo& child : children) {
        walk.visit(walk.context, walk.path, child);
        if (!is_container(child.type) || child.offline) continue;
        const size_t saved = walk.length;
        if (!enter(walk, child)) {
            ++walk.too_deep;
            continue;
        }
        const txfs::Status inner = walk_children(walk);
        walk.length = saved;
        walk.path[saved] = '\0';
        if (inner != txfs::Status::kOk && inner != txfs::Status::kOffline && inner != txfs::Status::kCorrupt)
            return inner;
    }
    return txfs::Status::kOk;
}

void count(void* context, const char*, const txfs::NodeInfo& entry) {
    Inventory& inventory = *static_cast<Inventory*>(context);
    if (entry.offline) ++inventory.offline;
    switch (entry.type) {
        case txfs::NodeType::kDirectory: ++inventory.directories; break;
        case txfs::NodeType::kFile: ++inventory.files, inventory.file_bytes += entry.size; break;
        case txfs::NodeType::kKey: ++inventory.keys; break;
        case txfs::NodeType::kValue: ++inventory.values; break;
        case txfs::NodeType::kFree: break;
    }
}

const char* type_letter(txfs::NodeType type) {
    switch (type) {
        case txfs::NodeType::kDirectory: return "dir  ";
        case txfs::NodeType::kFile: return "file ";
        case txfs::NodeType::kKey: return "key  ";
        case txfs::NodeType::kValue: return "value";
        case txfs::NodeType::kFree: break;
    }
    return "?    ";
}

// Registry lines name a value as `key [name]` ("[name]" alone under the root key).
void print_value(GuestVolume& volume, const char* key, const txfs::NodeInfo& entry) {
    char data[128];
    size_t length = sizeof(data) - 1;
    txfs::ValueType type;
    const txfs::Status status = volume.volume().get_value(nullptr, key, entry.name, &type, data, &length);
    const char* space = *key ? " " : "";
    if (status != txfs::Status::kOk) {
        kprint("txfs:   value %s%s[%s] (%s)\n", key, space, entry.name, txfs::status_name(status));
    } else if (type == txfs::ValueType::kString) {
        data[length] = '\0';
        kprint("txfs:   value %s%s[%s] = \"%s\"\n", key, space, entry.name, data);
    } else if (type == txfs::ValueType::kU32 || type == txfs::ValueType::kU64) {
        uint64_t number = 0;
        memcpy(&number, data, length);
        kprint("txfs:   value %s%s[%s] = %lu (%s)\n", key, space, entry.name, number,
               type == txfs::ValueType::kU32 ? "u32" : "u64");
    } else {
        kprint("txfs:   value %s%s[%s] = %lu bytes of binary\n", key, space, entry.name, entry.size);
    }
}

struct Listing {
    GuestVolume& volume;
    Tree tree;
};

// "/dir" + "name" -> "/dir/name"; "/" + "name" -> "/name"; registry "" + "name" -> "name".
void print_entry(void* context, const char* parent, const txfs::NodeInfo& entry) {
    const Listing& listing = *static_cast<Listing*>(context);
    if (entry.type == txfs::NodeType::kValue && !entry.offline) {
        print_value(listing.volume, parent, entry);
        return;
    }
    const bool at_root = listing.tree == Tree::kFiles ? parent[1] == '\0' : parent[0] == '\0';
    const char* separator = at_root ? "" : "/";
    if (entry.offline)
        kprint("txfs:   %s %s%s%s OFFLINE\n", type_letter(entry.type), parent, separator, entry.name);
    else if (entry.type == txfs::NodeType::kFile)
        kprint("txfs:   %s %s%s%s (%lu bytes)\n", type_letter(entry.type), parent, separator, entry.name, entry.size);
    else
        kprint("txfs:   %s %s%s%s\n", type_letter(entry.type), parent, separator, entry.name);
}

}  // namespace

txfs::Status walk(GuestVolume& volume, Tree tree, EntryVisitor visit, void* context, uint32_t* too_deep) {
    Walk state{volume, tree, visit, context};
    if (tree == Tree::kFiles) state.path[state.length++] = '/';
    const txfs::Status status = walk_children(state);
    if (too_deep) *too_deep = state.too_deep;
    return status;
}

txfs::Status take_inventory(GuestVolume& volume, Inventory* inventory) {
    *inventory = {};
    uint32_t files_too_deep = 0, keys_too_deep = 0;
    txfs::Status status = walk(volume, Tree::kFiles, count, inventory, &files_too_deep);
    if (status == txfs::Status::kOk) status = walk(volume, Tree::kRegistry, count, inventory, &keys_too_deep);
    inventory->too_deep = files_too_deep + keys_too_deep;
    return status;
}

txfs::Status print_listing(GuestVolume& volume) {
    kprint("txfs: files:\n");
    Listing files{volume, Tree::kFiles};
    txfs::Status status = walk(volume, Tree::kFiles, print_entry, &files);
    if (status != txfs::Status::kOk) return status;
    kprint("txfs: registry:\n");
    Listing registry{volume, Tree::kRegistry};
    return walk(volume, Tree::kRegistry, print_entry, &registry);
}

}  // namespace hvkvm::guest::fs
