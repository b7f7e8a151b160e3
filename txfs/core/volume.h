// A mounted txfs volume: a tree of files and a registry of keys and typed values, changed only by
// transactions that commit atomically and durably through a write-ahead log, with damaged objects
// taken offline and repaired in the background. docs/txfs.md describes the design.
//
// Threads: every public method may be called from any thread. One mutex guards the in-memory
// state; it is released while a committer waits for the log flush (group commit) and while the
// repair worker sleeps.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/block_cache.h"
#include "core/format.h"
#include "core/interfaces.h"
#include "core/memory.h"
#include "core/status.h"

namespace txfs {

class Transaction;
struct TxObject;
struct CommitPlan;

struct FormatOptions {
    uint32_t inode_count = 1024;
    uint32_t log_blocks = 1024;  // 4 MiB of log
    uint64_t volume_id = 0;      // must be non-zero; distinguishes this volume's log records
};

struct MountOptions {
    bool read_only = false;       // replay the log in memory only; write nothing
    bool repair_worker = true;    // start the background repair thread (read-write mounts)
    uint32_t checkpoint_percent = 75;  // checkpoint once the log is this full
};

struct VolumeStats {
    uint64_t commits = 0;
    uint64_t rollbacks = 0;
    uint64_t conflicts = 0;
    uint64_t log_flushes = 0;  // flushes made for commits (group commit shares them)
    uint64_t checkpoints = 0;
    uint64_t records_replayed = 0;  // at mount
    uint64_t corruptions_detected = 0;
    uint64_t repairs_succeeded = 0;
    uint64_t repairs_failed = 0;
};

struct NodeInfo {
    uint32_t inode;
    NodeType type;
    ValueType value_type;
    bool offline;
    uint64_t size;
    uint32_t name_length;
    char name[kMaxNameLength + 1];  // NUL-terminated
};
using ListCallback = void (*)(void* context, const NodeInfo& entry);

// One finding of check(): an error makes the volume inconsistent; a note is information.
enum class Finding : uint8_t { kError, kNote };
using CheckCallback = void (*)(void* context, Finding finding, const char* message);
struct CheckSummary {
    uint32_t errors = 0;
    uint32_t notes = 0;
    uint32_t inodes_in_use = 0;
    uint32_t blocks_in_use = 0;
    uint32_t offline_objects = 0;
};

class Volume {
public:
    static Status format(BlockDevice& device, Platform& platform, const FormatOptions& options);
    // On success *out is a mounted volume; close it with unmount() (clean) or destroy() (as if the
    // machine lost power: nothing more is written).
    static Status mount(BlockDevice& device, Platform& platform, const MountOptions& options, Volume** out);
    static void destroy(Volume* volume);
    Status unmount();  // checkpoints, stops the repair worker, then destroys the volume

    // Transactions. A null Transaction* in a read means "committed state only".
    Status begin(Transaction** out);
    Status commit(Transaction* transaction);  // always consumes the transaction
    void rollback(Transaction* transaction);

    // Files: absolute paths ("/dir/file"). Writes need a transaction.
    Status create_directory(Transaction* tx, const char* path);
    Status create_file(Transaction* tx, const char* path);
    Status write_file(Transaction* tx, const char* path, uint64_t offset, const void* data, size_t length);
    Status truncate_file(Transaction* tx, const char* path, uint64_t size);
    Status remove(Transaction* tx, const char* path);  // a file or an empty directory
    Status read_file(Transaction* tx, const char* path, uint64_t offset, void* buffer, size_t length, size_t* read);
    Status stat(Transaction* tx, const char* path, NodeInfo* info);
    Status list_directory(Transaction* tx, const char* path, ListCallback callback, void* context);

    // Registry: key paths relative to the registry root ("Software/Contoso"; "" is the root).
    Status create_key(Transaction* tx, const char* key);
    Status delete_key_tree(Transaction* tx, const char* key);  // the key, its values and subkeys
    Status set_value(Transaction* tx, const char* key, const char* name, ValueType type, const void* data, size_t length);
    Status delete_value(Transaction* tx, const char* key, const char* name);
    // *length: in, the buffer size; out, the value's size (kTooLarge if it did not fit).
    Status get_value(Transaction* tx, const char* key, const char* name, ValueType* type, void* buffer, size_t* length);
    Status list_key(Transaction* tx, const char* key, ListCallback callback, void* context);  // subkeys, then values

    // Consistency check of the mounted volume (fsck): metadata, tree, allocation, every checksum.
    // Runs while the volume is in use; corruption it finds is also handed to the repair worker.
    Status check(CheckCallback callback, void* context, CheckSummary* summary);
    // Writes committed changes home and empties the log.
    Status checkpoint();
    // Waits until the repair worker has emptied the repair queue.
    void wait_for_repairs();
    // Runs the queued repairs in the calling thread (mounts without a worker: tools, tests).
    void repair_now();
    VolumeStats stats();
    const Superblock& superblock() const { return superblock_; }
    uint64_t log_used_blocks();

    Volume(const Volume&) = delete;
    Volume& operator=(const Volume&) = delete;

private:
    friend class Transaction;
    template <typename T, typename... Args>
    friend T* create_object(Platform&, Args&&...);
    template <typename T>
    friend void destroy_object(Platform&, T*);

    // Per-inode flags (in-memory only).
    enum InodeFlag : uint8_t {
        kDamaged = 1 << 0,       // neither copy of the inode is valid; its image is unknown
        kInvalid = 1 << 1,       // checksum fine but the content is impossible (hostile or buggy)
        kDataCorrupt = 1 << 2,   // a block it references failed its checksum
        kOrphan = 1 << 3,        // not reachable from a root
        kReserved = 1 << 4,      // slot taken by an uncommitted create
        kRepairQueued = 1 << 5,
    };
    static constexpr uint8_t kOfflineFlags = kDamaged | kInvalid | kDataCorrupt | kOrphan;

    Volume(BlockDevice& device, Platform& platform, const MountOptions& options, const Superblock& superblock);
    ~Volume();
    Status allocate_tables();

    // Block I/O.
    Status read_block(uint32_t block, void* buffer);
    Status write_block(uint32_t block, const void* data, WriteMode mode = WriteMode::kNormal);
    Status read_committed_block(uint32_t block, void* buffer);  // dirty cache first, then disk

    // Mount and recovery (recovery.cpp).
    static Status read_superblock(BlockDevice& device, Superblock* out, Platform& platform);
    Status load_metadata();
    Status replay_log(uint64_t* end_lsn);
    Status apply_record(const uint8_t* payload, uint32_t payload_bytes, uint32_t op_count);
    Status erase_stale_records(uint64_t end_lsn);
    void validate_inodes();
    void rebuild_tree();
    Status reconcile_allocation();
    Status write_superblocks(bool both);

    // Log (log.cpp).
    Status read_record(uint64_t lsn, uint64_t epoch_wanted, Buffer& record, LogRecordHeader* header);
    Status write_record(uint64_t lsn, const uint8_t* data, uint32_t blocks);
    uint64_t log_free_blocks() const { return superblock_.log_blocks - (log_head_ - superblock_.log_tail); }
    uint64_t log_used_blocks_locked() const { return log_head_ - superblock_.log_tail; }
    Status checkpoint_locked(bool both_superblocks = false);
    Status wait_for_flush(uint64_t end_lsn);

    // Inodes and the tree (namespace.cpp).
    const DiskInode& view(Transaction* tx, uint32_t inode) const;
    bool is_offline(uint32_t inode) const { return (flags_[inode] & kOfflineFlags) != 0; }
    Status resolve(Transaction* tx, uint32_t root, const char* path, bool want_parent, uint32_t* inode,
                   const char** leaf, size_t* leaf_length);
    Status create_at(Transaction* tx, uint32_t root, const char* path, NodeType type);
    Status resolve_typed(Transaction* tx, uint32_t root, const char* path, NodeType wanted, uint32_t* inode);
    Status find_child(Transaction* tx, uint32_t parent, const char* name, size_t name_length, bool leaf_kind,
                      uint32_t* child);
    template <typename Visit>
    void for_each_child(Transaction* tx, uint32_t parent, Visit&& visit);
    void fill_info(Transaction* tx, uint32_t inode, NodeInfo* info);
    void link_child(uint32_t parent, uint32_t child);
    void unlink_child(uint32_t parent, uint32_t child);
    Status lock_object(Transaction* tx, uint32_t inode);
    Status modify(Transaction* tx, uint32_t inode, TxObject** object);
    Status create_node(Transaction* tx, uint32_t parent, const char* name, size_t name_length, NodeType type,
                       uint32_t* created);
    Status delete_subtree(Transaction* tx, uint32_t inode);
    Status write_data(Transaction* tx, uint32_t inode, uint64_t offset, const void* data, size_t length);
    Status truncate_data(Transaction* tx, uint32_t inode, uint64_t size);
    Status read_data(Transaction* tx, uint32_t inode, uint64_t offset, void* buffer, size_t length, size_t* read);
    Status tx_block(Transaction* tx, TxObject* object, uint32_t index, uint8_t** data);
    // All block references of an image (refs must hold blocks_for_size(size)); on a bad indirect
    // block the references past the direct ones are left zero and kCorrupt returned.
    Status load_refs(const DiskInode& image, uint32_t inode, Vector<BlockRef>& refs);
    Status block_ref(const DiskInode& image, uint32_t index, BlockRef* ref, uint32_t inode);
    Status read_verified(uint32_t inode, const BlockRef& ref, void* buffer);
    Status find_value(Transaction* tx, const char* key, const char* name, uint32_t* value, uint32_t* key_inode);

    // Commit (transaction.cpp).
    Status plan_commit(Transaction* tx, CommitPlan& plan);
    Status plan_object(Transaction* tx, TxObject* object, CommitPlan& plan);
    Status allocate_block(CommitPlan& plan, uint32_t* block);
    void install(Transaction* tx, CommitPlan& plan);
    void release_transaction(Transaction* tx, bool committed);

    // Allocation bitmaps: "committed" is what the log and bitmap blocks describe; "in use" adds
    // blocks taken by commits still in flight.
    bool bit(const Vector<uint8_t>& bits, uint32_t block) const { return (bits[block / 8] >> (block % 8)) & 1; }
    void set_bit(Vector<uint8_t>& bits, uint32_t block, bool value);
    void mark_inode_dirty(uint32_t inode) { dirty_meta_[superblock_.bitmap_blocks + inode / kInodesPerBlock] = 1; }
    void mark_bitmap_dirty(uint32_t block) { dirty_meta_[block / kBitsPerBitmapBlock] = 1; }
    void encode_bitmap_block(uint32_t index, uint8_t* out) const;
    void encode_inode_block(uint32_t index, uint8_t* out) const;

    // Self-healing (healing.cpp).
    void report_corruption(uint32_t inode, const char* what, uint32_t block);
    static void repair_worker_entry(void* volume);
    void repair_worker();
    void repair_queued();
    bool repair_inode(uint32_t inode);
    bool repair_data(uint32_t inode);
    bool find_in_log(LogOpKind kind, uint32_t target, const BlockRef* expected, uint8_t* out);
    void queue_repair(uint32_t inode);
    bool validate_inode(uint32_t number, const DiskInode& image) const;
    void note(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));

    // fsck (check.cpp).
    struct CheckContext;
    void check_metadata_copies(CheckContext& context);
    void check_tree(CheckContext& context);
    void check_blocks(CheckContext& context);

    BlockDevice& device_;
    Platform& platform_;
    MountOptions options_;
    Superblock superblock_;
    Mutex* mutex_ = nullptr;
    Condition* changed_ = nullptr;  // flush done, commit installed, checkpoint done, repair queued/done
    Worker* worker_ = nullptr;

    // Everything below is guarded by mutex_.
    Vector<DiskInode> inodes_;          // committed images
    Vector<uint8_t> flags_;             // InodeFlag per inode
    Vector<uint64_t> owner_;            // id of the transaction holding the inode, 0 = none
    Vector<uint32_t> first_child_;      // committed tree, rebuilt from parent links
    Vector<uint32_t> next_sibling_;
    Vector<uint8_t> committed_bits_;
    Vector<uint8_t> in_use_bits_;
    Vector<uint8_t> dirty_meta_;        // per metadata block (bitmap blocks, then inode table)
    BlockCache dirty_blocks_;           // committed data images not yet written home
    Vector<uint32_t> repair_queue_;
    uint64_t log_head_ = 0;             // LSN where the next record goes
    uint64_t durable_lsn_ = 0;          // records below are flushed
    uint64_t next_transaction_id_ = 1;
    uint32_t in_flight_ = 0;            // commits between writing their record and installing
    uint32_t allocation_cursor_ = 0;
    bool flushing_ = false;
    bool checkpointing_ = false;
    bool repairing_ = false;
    bool stopping_ = false;
    bool failed_ = false;               // an I/O error: no more writes
    bool bitmap_lost_ = false;          // at mount: a bitmap block had no valid copy
    VolumeStats stats_;
};

}  // namespace txfs
