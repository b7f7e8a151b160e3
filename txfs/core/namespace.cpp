// The tree of files and registry keys as a transaction sees it: path resolution, object locking,
// and the file/key/value operations. Committed state lives in Volume::inodes_; a transaction's
// changes live in its TxObjects until commit (transaction.cpp) installs them.
#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"

namespace txfs {
namespace {

bool is_container(NodeType type) { return type == NodeType::kDirectory || type == NodeType::kKey; }

bool valid_name(const char* name, size_t length) {
    if (length == 0 || length > kMaxNameLength) return false;
    if ((length == 1 && name[0] == '.') || (length == 2 && name[0] == '.' && name[1] == '.')) return false;
    for (size_t i = 0; i < length; ++i)
        if (name[i] == '/' || name[i] == '\0') return false;
    return true;
}

bool names_equal(const DiskInode& image, const char* name, size_t length) {
    return image.name_length == length && __builtin_memcmp(image.name, name, length) == 0;
}

size_t bounded_length(const char* text) {
    size_t length = 0;
    if (text)
        while (text[length] && length <= kMaxNameLength) ++length;
    return length;
}

}  // namespace

const DiskInode& Volume::view(Transaction* tx, uint32_t inode) const {
    if (tx)
        if (TxObject* object = tx->find(inode)) return object->image;
    return inodes_[inode];
}

template <typename Visit>
void Volume::for_each_child(Transaction* tx, uint32_t parent, Visit&& visit) {
    for (uint32_t child = first_child_[parent]; child != kNoInode; child = next_sibling_[child]) {
        TxObject* object = tx ? tx->find(child) : nullptr;
        if (object && object->deleted) continue;
        visit(child);
    }
    if (!tx) return;
    for (TxObject* object : tx->objects)
        if (object->created && !object->deleted && object->image.parent == parent) visit(object->number);
}

Status Volume::find_child(Transaction* tx, uint32_t parent, const char* name, size_t name_length, bool leaf_kind,
                          uint32_t* child) {
    const bool in_registry = static_cast<NodeType>(view(tx, parent).type) == NodeType::kKey;
    uint32_t found = kNoInode;
    for_each_child(tx, parent, [&](uint32_t candidate) {
        const DiskInode& image = view(tx, candidate);
        if (found != kNoInode || !names_equal(image, name, name_length)) return;
        // Directories and files share one namespace; a key's subkeys and values have one each.
        if (in_registry && (static_cast<NodeType>(image.type) == NodeType::kValue) != leaf_kind) return;
        found = candidate;
    });
    *child = found;
    return found == kNoInode ? Status::kNotFound : Status::kOk;
}

// Walks `path` from `root`. File paths are absolute ("/a/b"); key paths are relative ("a/b", ""
// for the root). With want_parent the last component is returned in leaf/leaf_length instead.
Status Volume::resolve(Transaction* tx, uint32_t root, const char* path, bool want_parent, uint32_t* inode,
                       const char** leaf, size_t* leaf_length) {
    if (!path) return Status::kInvalidArgument;
    if (root == kRootDirectory) {
        if (path[0] != '/') return Status::kInvalidArgument;
        ++path;
    }
    // Syntax first, so a malformed path is refused whatever exists: components of 1..128
    // characters, no "." or "..", no empty component except the whole path (the root).
    for (const char* scan = path; *scan;) {
        const char* end = scan;
        while (*end && *end != '/') ++end;
        if (!valid_name(scan, static_cast<size_t>(end - scan))) return Status::kInvalidArgument;
        if (*end == '/' && end[1] == '\0') return Status::kInvalidArgument;
        scan = *end ? end + 1 : end;
    }
    uint32_t current = root;
    const char* cursor = path;
    while (true) {
        const char* end = cursor;
        while (*end && *end != '/') ++end;
        const size_t length = static_cast<size_t>(end - cursor);
        if (length == 0) {
            if (*end == '\0' && !want_parent && (cursor == path)) break;  // the root itself
            return Status::kInvalidArgument;
        }
        if (!valid_name(cursor, length)) return Status::kInvalidArgument;
        const bool last = *end == '\0';
        if (last && want_parent) {
            *leaf = cursor;
            *leaf_length = length;
            break;
        }
        if (!is_container(static_cast<NodeType>(view(tx, current).type))) return Status::kNotFound;
        uint32_t next;
        if (Status status = find_child(tx, current, cursor, length, false, &next); status != Status::kOk) return status;
        current = next;
        if (last) break;
        cursor = end + 1;
    }
    if (want_parent && !is_container(static_cast<NodeType>(view(tx, current).type))) return Status::kNotFound;
    *inode = current;
    return Status::kOk;
}

void Volume::link_child(uint32_t parent, uint32_t child) {
    next_sibling_[child] = first_child_[parent];
    first_child_[parent] = child;
}

void Volume::unlink_child(uint32_t parent, uint32_t child) {
    for (uint32_t* link = &first_child_[parent]; *link != kNoInode; link = &next_sibling_[*link]) {
        if (*link == child) {
            *link = next_sibling_[child];
            next_sibling_[child] = kNoInode;
            return;
        }
    }
}

Status Volume::lock_object(Transaction* tx, uint32_t inode) {
    if (owner_[inode] == tx->id) return Status::kOk;
    if (owner_[inode] != 0) {
        ++stats_.conflicts;
        return Status::kConflict;
    }
    if (!tx->locks.push_back(inode)) return Status::kNoMemory;
    owner_[inode] = tx->id;
    return Status::kOk;
}

Status Volume::modify(Transaction* tx, uint32_t inode, TxObject** object) {
    if (Status status = lock_object(tx, inode); status != Status::kOk) return status;
    if (TxObject* existing = tx->find(inode)) {
        *object = existing;
        return Status::kOk;
    }
    TxObject* created = create_object<TxObject>(platform_, platform_);
    if (!created) return Status::kNoMemory;
    if (!tx->objects.push_back(created)) {
        destroy_object(platform_, created);
        return Status::kNoMemory;
    }
    created->number = inode;
    created->image = inodes_[inode];
    *object = created;
    return Status::kOk;
}

Status Volume::create_node(Transaction* tx, uint32_t parent, const char* name, size_t name_length, NodeType type,
                           uint32_t* created) {
    if (!valid_name(name, name_length)) return Status::kInvalidArgument;
    if (is_offline(parent)) return Status::kOffline;
    if (Status status = lock_object(tx, parent); status != Status::kOk) return status;
    uint32_t existing;
    if (find_child(tx, parent, name, name_length, type == NodeType::kValue, &existing) == Status::kOk)
        return Status::kAlreadyExists;
    uint32_t slot = kNoInode;
    for (uint32_t inode = kFirstFreeInode; inode < superblock_.inode_count; ++inode) {
        if (static_cast<NodeType>(inodes_[inode].type) == NodeType::kFree && owner_[inode] == 0 &&
            (flags_[inode] & (kReserved | kDamaged | kInvalid)) == 0) {
            slot = inode;
            break;
        }
    }
    if (slot == kNoInode) return Status::kNoSpace;
    TxObject* object;
    if (Status status = modify(tx, slot, &object); status != Status::kOk) return status;
    flags_[slot] |= kReserved;
    object->created = true;
    DiskInode& image = object->image;
    __builtin_memset(&image, 0, sizeof(image));
    image.number = slot;
    image.type = static_cast<uint16_t>(type);
    image.parent = parent;
    image.generation = inodes_[slot].generation;
    image.name_length = static_cast<uint8_t>(name_length);
    __builtin_memcpy(image.name, name, name_length);
    *created = slot;
    return Status::kOk;
}

// Marks `inode` and everything under it deleted in `tx` (children first in the walk order does
// not matter: nothing is freed before commit).
Status Volume::delete_subtree(Transaction* tx, uint32_t inode) {
    Vector<uint32_t> pending(platform_);
    if (!pending.push_back(inode)) return Status::kNoMemory;
    // The object itself first: if another transaction holds it, this one takes no lock at all.
    TxObject* top;
    if (Status status = modify(tx, inode, &top); status != Status::kOk) return status;
    if (Status status = lock_object(tx, view(tx, inode).parent); status != Status::kOk) return status;
    while (!pending.empty()) {
        const uint32_t current = pending.back();
        pending.pop_back();
        bool out_of_memory = false;
        for_each_child(tx, current, [&](uint32_t child) { out_of_memory |= !pending.push_back(child); });
        if (out_of_memory) return Status::kNoMemory;
        TxObject* object;
        if (Status status = modify(tx, current, &object); status != Status::kOk) return status;
        object->deleted = true;
    }
    return Status::kOk;
}

void Volume::fill_info(Transaction* tx, uint32_t inode, NodeInfo* info) {
    const DiskInode& image = view(tx, inode);
    info->inode = inode;
    info->type = static_cast<NodeType>(image.type);
    info->value_type = static_cast<ValueType>(image.value_type);
    info->offline = is_offline(inode);
    info->size = image.size;
    info->name_length = image.name_length;
    __builtin_memcpy(info->name, image.name, image.name_length);
    info->name[image.name_length] = '\0';
}

// ---- block content ----

Status Volume::read_verified(uint32_t inode, const BlockRef& ref, void* buffer) {
    if (ref.block < superblock_.data_start || ref.block >= superblock_.block_count) {
        report_corruption(inode, "block reference out of range", ref.block);
        return Status::kCorrupt;
    }
    if (Status status = read_committed_block(ref.block, buffer); status != Status::kOk) return status;
    if (crc32c(buffer, kBlockSize) != ref.crc) {
        report_corruption(inode, "block checksum mismatch", ref.block);
        return Status::kCorrupt;
    }
    return Status::kOk;
}

// The committed reference for block `index` of an inode image.
Status Volume::block_ref(const DiskInode& image, uint32_t index, BlockRef* ref, uint32_t inode) {
    if (index < kDirectBlocks) {
        *ref = image.direct[index];
        return Status::kOk;
    }
    Buffer indirect(platform_);
    if (!indirect.allocate(kBlockSize)) return Status::kNoMemory;
    if (Status status = read_verified(inode, image.indirect, indirect.data()); status != Status::kOk) return status;
    __builtin_memcpy(ref, indirect.data() + (index - kDirectBlocks) * sizeof(BlockRef), sizeof(BlockRef));
    return Status::kOk;
}

Status Volume::load_refs(const DiskInode& image, uint32_t inode, Vector<BlockRef>& refs) {
    const uint32_t count = blocks_for_size(image.size);
    for (uint32_t index = 0; index < count && index < kDirectBlocks; ++index) refs[index] = image.direct[index];
    if (count <= kDirectBlocks) return Status::kOk;
    Buffer indirect(platform_);
    if (!indirect.allocate(kBlockSize)) return Status::kNoMemory;
    if (Status status = read_verified(inode, image.indirect, indirect.data()); status != Status::kOk) return status;
    __builtin_memcpy(&refs[kDirectBlocks], indirect.data(), (count - kDirectBlocks) * sizeof(BlockRef));
    return Status::kOk;
}

// The transaction's private copy of block `index`, made on first use from the committed block
// (or zeros past the committed end or a truncation point).
Status Volume::tx_block(Transaction* tx, TxObject* object, uint32_t index, uint8_t** data) {
    (void)tx;
    if (TxBlock* existing = object->find_block(index)) {
        *data = existing->data;
        return Status::kOk;
    }
    uint8_t* buffer = static_cast<uint8_t*>(platform_.allocate(kBlockSize));
    if (!buffer) return Status::kNoMemory;
    __builtin_memset(buffer, 0, kBlockSize);
    const DiskInode& committed = inodes_[object->number];
    const uint64_t start = uint64_t{index} * kBlockSize;
    const uint64_t valid_end = object->created ? 0 : (committed.size < object->zero_from ? committed.size : object->zero_from);
    if (start < valid_end) {
        BlockRef ref;
        Status status = block_ref(committed, index, &ref, object->number);
        if (status == Status::kOk) status = read_verified(object->number, ref, buffer);
        if (status != Status::kOk) {
            platform_.release(buffer, kBlockSize);
            return status;
        }
        if (valid_end - start < kBlockSize) __builtin_memset(buffer + (valid_end - start), 0, kBlockSize - (valid_end - start));
    }
    if (!object->blocks.push_back(TxBlock{index, buffer})) {
        platform_.release(buffer, kBlockSize);
        return Status::kNoMemory;
    }
    *data = buffer;
    return Status::kOk;
}

Status Volume::write_data(Transaction* tx, uint32_t inode, uint64_t offset, const void* data, size_t length) {
    if (offset > kMaxFileSize || length > kMaxFileSize - offset) return Status::kTooLarge;
    if (is_offline(inode)) return Status::kOffline;
    TxObject* object;
    if (Status status = modify(tx, inode, &object); status != Status::kOk) return status;
    if (length == 0) return Status::kOk;
    const uint64_t end = offset + length;
    const uint64_t from = object->image.size < offset ? object->image.size : offset;
    const uint8_t* source = static_cast<const uint8_t*>(data);
    for (uint32_t index = static_cast<uint32_t>(from / kBlockSize); uint64_t{index} * kBlockSize < end; ++index) {
        uint8_t* block;
        if (Status status = tx_block(tx, object, index, &block); status != Status::kOk) return status;
        const uint64_t block_start = uint64_t{index} * kBlockSize;
        const uint64_t copy_start = offset > block_start ? offset : block_start;
        const uint64_t copy_end = end < block_start + kBlockSize ? end : block_start + kBlockSize;
        if (copy_start < copy_end)
            __builtin_memcpy(block + (copy_start - block_start), source + (copy_start - offset), copy_end - copy_start);
    }
    if (end > object->image.size) object->image.size = end;
    return Status::kOk;
}

Status Volume::truncate_data(Transaction* tx, uint32_t inode, uint64_t size) {
    if (size > kMaxFileSize) return Status::kTooLarge;
    if (is_offline(inode)) return Status::kOffline;
    TxObject* object;
    if (Status status = modify(tx, inode, &object); status != Status::kOk) return status;
    const uint64_t old_size = object->image.size;
    if (size >= old_size) {
        // Growing: materialise the new zero blocks so every block below the size exists at commit.
        for (uint32_t index = static_cast<uint32_t>(old_size / kBlockSize); uint64_t{index} * kBlockSize < size; ++index) {
            uint8_t* block;
            if (Status status = tx_block(tx, object, index, &block); status != Status::kOk) return status;
        }
        object->image.size = size;
        return Status::kOk;
    }
    const uint32_t kept_blocks = blocks_for_size(size);
    for (size_t i = 0; i < object->blocks.size();) {
        if (object->blocks[i].index >= kept_blocks) {
            platform_.release(object->blocks[i].data, kBlockSize);
            object->blocks.erase_unordered(i);
        } else {
            ++i;
        }
    }
    if (size % kBlockSize) {
        uint8_t* block;
        if (Status status = tx_block(tx, object, kept_blocks - 1, &block); status != Status::kOk) return status;
        __builtin_memset(block + size % kBlockSize, 0, kBlockSize - size % kBlockSize);
    }
    if (size < object->zero_from) object->zero_from = size;
    object->image.size = size;
    return Status::kOk;
}

Status Volume::read_data(Transaction* tx, uint32_t inode, uint64_t offset, void* buffer, size_t length, size_t* read) {
    *read = 0;
    if (is_offline(inode)) return Status::kOffline;
    const DiskInode& image = view(tx, inode);
    if (offset >= image.size) return Status::kOk;
    if (length > image.size - offset) length = static_cast<size_t>(image.size - offset);
    TxObject* object = tx ? tx->find(inode) : nullptr;
    const DiskInode& committed = inodes_[inode];
    const uint64_t committed_end =
        object ? (object->created ? 0 : (committed.size < object->zero_from ? committed.size : object->zero_from)) : committed.size;
    Buffer scratch(platform_);
    if (!scratch.allocate(kBlockSize)) return Status::kNoMemory;
    uint8_t* out = static_cast<uint8_t*>(buffer);
    const uint64_t end = offset + length;
    for (uint64_t position = offset; position < end;) {
        const uint32_t index = static_cast<uint32_t>(position / kBlockSize);
        const uint64_t block_start = uint64_t{index} * kBlockSize;
        const uint64_t chunk_end = end < block_start + kBlockSize ? end : block_start + kBlockSize;
        const uint8_t* source = nullptr;
        if (TxBlock* own = object ? object->find_block(index) : nullptr) {
            source = own->data;
        } else if (block_start < committed_end) {
            BlockRef ref;
            Status status = block_ref(committed, index, &ref, inode);
            if (status == Status::kOk) status = read_verified(inode, ref, scratch.data());
            if (status != Status::kOk) return status;
            source = scratch.data();
        }
        if (source)
            __builtin_memcpy(out + (position - offset), source + (position - block_start), chunk_end - position);
        else
            __builtin_memset(out + (position - offset), 0, chunk_end - position);
        position = chunk_end;
    }
    *read = length;
    return Status::kOk;
}

// ---- public file operations ----

// Creates the last component of `path` under `root` (the parent must be a `container`).
Status Volume::create_at(Transaction* tx, uint32_t root, const char* path, NodeType type) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t parent, created;
    const char* name;
    size_t length;
    if (Status status = resolve(tx, root, path, true, &parent, &name, &length); status != Status::kOk) return status;
    const NodeType container = root == kRootDirectory ? NodeType::kDirectory : NodeType::kKey;
    if (static_cast<NodeType>(view(tx, parent).type) != container) return Status::kWrongType;
    return create_node(tx, parent, name, length, type, &created);
}

// Resolves `path` to an object of type `wanted` (mutex held).
Status Volume::resolve_typed(Transaction* tx, uint32_t root, const char* path, NodeType wanted, uint32_t* inode) {
    if (Status status = resolve(tx, root, path, false, inode, nullptr, nullptr); status != Status::kOk) return status;
    return static_cast<NodeType>(view(tx, *inode).type) == wanted ? Status::kOk : Status::kWrongType;
}

Status Volume::create_directory(Transaction* tx, const char* path) { return create_at(tx, kRootDirectory, path, NodeType::kDirectory); }
Status Volume::create_file(Transaction* tx, const char* path) { return create_at(tx, kRootDirectory, path, NodeType::kFile); }
Status Volume::create_key(Transaction* tx, const char* key) { return create_at(tx, kRegistryRoot, key, NodeType::kKey); }

Status Volume::write_file(Transaction* tx, const char* path, uint64_t offset, const void* data, size_t length) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve_typed(tx, kRootDirectory, path, NodeType::kFile, &inode); status != Status::kOk) return status;
    return write_data(tx, inode, offset, data, length);
}

Status Volume::truncate_file(Transaction* tx, const char* path, uint64_t size) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve_typed(tx, kRootDirectory, path, NodeType::kFile, &inode); status != Status::kOk) return status;
    return truncate_data(tx, inode, size);
}

Status Volume::remove(Transaction* tx, const char* path) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve(tx, kRootDirectory, path, false, &inode, nullptr, nullptr); status != Status::kOk) return status;
    if (inode == kRootDirectory) return Status::kInvalidArgument;
    bool has_children = false;
    for_each_child(tx, inode, [&](uint32_t) { has_children = true; });
    if (has_children) return Status::kNotEmpty;
    return delete_subtree(tx, inode);
}

Status Volume::read_file(Transaction* tx, const char* path, uint64_t offset, void* buffer, size_t length, size_t* read) {
    MutexGuard guard(*mutex_);
    *read = 0;
    uint32_t inode;
    if (Status status = resolve_typed(tx, kRootDirectory, path, NodeType::kFile, &inode); status != Status::kOk) return status;
    return read_data(tx, inode, offset, buffer, length, read);
}

Status Volume::stat(Transaction* tx, const char* path, NodeInfo* info) {
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve(tx, kRootDirectory, path, false, &inode, nullptr, nullptr); status != Status::kOk) return status;
    fill_info(tx, inode, info);
    return Status::kOk;
}

Status Volume::list_directory(Transaction* tx, const char* path, ListCallback callback, void* context) {
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve_typed(tx, kRootDirectory, path, NodeType::kDirectory, &inode); status != Status::kOk) return status;
    for_each_child(tx, inode, [&](uint32_t child) {
        NodeInfo info;
        fill_info(tx, child, &info);
        callback(context, info);
    });
    return Status::kOk;
}

// ---- registry ----

Status Volume::delete_key_tree(Transaction* tx, const char* key) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve(tx, kRegistryRoot, key, false, &inode, nullptr, nullptr); status != Status::kOk) return status;
    if (inode == kRegistryRoot) return Status::kInvalidArgument;
    return delete_subtree(tx, inode);
}

Status Volume::find_value(Transaction* tx, const char* key, const char* name, uint32_t* value, uint32_t* key_inode) {
    uint32_t found;
    if (Status status = resolve_typed(tx, kRegistryRoot, key, NodeType::kKey, &found); status != Status::kOk) return status;
    *key_inode = found;
    const size_t length = bounded_length(name);
    if (!valid_name(name, length)) return Status::kInvalidArgument;
    return find_child(tx, *key_inode, name, length, true, value);
}

Status Volume::set_value(Transaction* tx, const char* key, const char* name, ValueType type, const void* data, size_t length) {
    if (!tx) return Status::kInvalidArgument;
    const bool size_ok = (type == ValueType::kU32 && length == 4) || (type == ValueType::kU64 && length == 8) ||
                         type == ValueType::kString || type == ValueType::kBinary;
    if (!size_ok) return Status::kInvalidArgument;
    if (length > kMaxFileSize) return Status::kTooLarge;
    MutexGuard guard(*mutex_);
    uint32_t value, key_inode = kNoInode;
    Status status = find_value(tx, key, name, &value, &key_inode);
    if (status == Status::kNotFound && key_inode != kNoInode)  // the key exists, the value not yet
        status = create_node(tx, key_inode, name, bounded_length(name), NodeType::kValue, &value);
    if (status != Status::kOk) return status;
    if ((status = truncate_data(tx, value, 0)) != Status::kOk) return status;
    if ((status = write_data(tx, value, 0, data, length)) != Status::kOk) return status;
    tx->find(value)->image.value_type = static_cast<uint8_t>(type);
    return Status::kOk;
}

Status Volume::delete_value(Transaction* tx, const char* key, const char* name) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    uint32_t value, key_inode;
    if (Status status = find_value(tx, key, name, &value, &key_inode); status != Status::kOk) return status;
    return delete_subtree(tx, value);
}

Status Volume::get_value(Transaction* tx, const char* key, const char* name, ValueType* type, void* buffer, size_t* length) {
    MutexGuard guard(*mutex_);
    uint32_t value, key_inode;
    if (Status status = find_value(tx, key, name, &value, &key_inode); status != Status::kOk) return status;
    if (is_offline(value)) return Status::kOffline;
    const DiskInode& image = view(tx, value);
    *type = static_cast<ValueType>(image.value_type);
    if (image.size > *length) {
        *length = static_cast<size_t>(image.size);
        return Status::kTooLarge;
    }
    return read_data(tx, value, 0, buffer, static_cast<size_t>(image.size), length);
}

Status Volume::list_key(Transaction* tx, const char* key, ListCallback callback, void* context) {
    MutexGuard guard(*mutex_);
    uint32_t inode;
    if (Status status = resolve_typed(tx, kRegistryRoot, key, NodeType::kKey, &inode); status != Status::kOk) return status;
    const NodeType order[] = {NodeType::kKey, NodeType::kValue};  // subkeys first, then values
    for (NodeType wanted : order) {
        for_each_child(tx, inode, [&](uint32_t child) {
            if (static_cast<NodeType>(view(tx, child).type) != wanted) return;
            NodeInfo info;
            fill_info(tx, child, &info);
            callback(context, info);
        });
    }
    return Status::kOk;
}

}  // namespace txfs
