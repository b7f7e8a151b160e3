// txfs on-disk format: every structure written to the volume, with its size and field offsets
// pinned by static_assert. All integers are little-endian (the only byte order both sides run).
// docs/txfs.md describes the layout and the protocols that use these structures.
//
// Volume layout, in 4 KiB blocks:
//   0, 1                      superblock copies A and B (the valid one with the higher sequence wins)
//   [meta_start, +meta)       primary metadata: allocation bitmap blocks, then the inode table
//   [mirror_start, +meta)     mirror copy of the metadata (written after the primary is durable)
//   [log_start, +log_blocks)  circular write-ahead log of transaction records
//   [data_start, block_count) file, value and indirect blocks
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace txfs {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kSuperblockMagic = 0x3153465854535854ull;  // "TXSTXFS1"
inline constexpr uint32_t kBitmapMagic = 0x504d4254u;                // "TBMP"
inline constexpr uint32_t kLogRecordMagic = 0x474f4c54u;             // "TLOG"

// Inode numbers with a fixed meaning. Inode 0 is never used, so 0 can mean "none".
inline constexpr uint32_t kNoInode = 0;
inline constexpr uint32_t kRootDirectory = 1;  // "/" of the file tree
inline constexpr uint32_t kRegistryRoot = 2;   // root key of the registry
inline constexpr uint32_t kFirstFreeInode = 3;

struct Superblock {
    uint64_t magic;
    uint32_t crc;  // CRC32C of this structure with crc = 0
    uint32_t version;
    uint64_t sequence;  // bumped on every superblock write
    uint64_t volume_id;
    uint64_t block_count;
    uint32_t block_size;
    uint32_t inode_count;
    uint32_t bitmap_blocks;
    uint32_t inode_table_blocks;
    uint32_t meta_start;
    uint32_t mirror_start;
    uint32_t log_start;
    uint32_t log_blocks;
    uint32_t data_start;
    uint32_t reserved0;
    uint64_t log_tail;   // LSN of the first record not yet checkpointed
    uint64_t log_epoch;  // records of other epochs are never replayed
    uint64_t next_transaction_id;
    uint8_t reserved[24];
};
static_assert(sizeof(Superblock) == 128);
static_assert(offsetof(Superblock, crc) == 8);
static_assert(offsetof(Superblock, sequence) == 16);
static_assert(offsetof(Superblock, volume_id) == 24);
static_assert(offsetof(Superblock, block_count) == 32);
static_assert(offsetof(Superblock, block_size) == 40);
static_assert(offsetof(Superblock, inode_count) == 44);
static_assert(offsetof(Superblock, bitmap_blocks) == 48);
static_assert(offsetof(Superblock, inode_table_blocks) == 52);
static_assert(offsetof(Superblock, meta_start) == 56);
static_assert(offsetof(Superblock, mirror_start) == 60);
static_assert(offsetof(Superblock, log_start) == 64);
static_assert(offsetof(Superblock, log_blocks) == 68);
static_assert(offsetof(Superblock, data_start) == 72);
static_assert(offsetof(Superblock, log_tail) == 80);
static_assert(offsetof(Superblock, log_epoch) == 88);
static_assert(offsetof(Superblock, next_transaction_id) == 96);

// One block of the allocation bitmap: a header, then one bit per volume block (1 = allocated).
struct BitmapBlockHeader {
    uint32_t magic;
    uint32_t crc;  // CRC32C of the whole 4 KiB block with crc = 0
    uint32_t index;  // position within the bitmap
    uint32_t reserved[5];
};
static_assert(sizeof(BitmapBlockHeader) == 32);
static_assert(offsetof(BitmapBlockHeader, crc) == 4);
static_assert(offsetof(BitmapBlockHeader, index) == 8);
inline constexpr uint32_t kBitsPerBitmapBlock = (kBlockSize - sizeof(BitmapBlockHeader)) * 8;

// A reference to a data block together with the CRC32C of its content: a block is verified
// against the checksum its parent holds, so a misdirected or lost write is caught too.
struct BlockRef {
    uint32_t block;  // 0 = none
    uint32_t crc;
};
static_assert(sizeof(BlockRef) == 8);

enum class NodeType : uint16_t { kFree = 0, kDirectory = 1, kFile = 2, kKey = 3, kValue = 4 };
enum class ValueType : uint8_t { kNone = 0, kString = 1, kU32 = 2, kU64 = 3, kBinary = 4 };

inline constexpr uint32_t kDirectBlocks = 10;
inline constexpr uint32_t kRefsPerIndirectBlock = kBlockSize / sizeof(BlockRef);
inline constexpr uint32_t kMaxFileBlocks = kDirectBlocks + kRefsPerIndirectBlock;
inline constexpr uint64_t kMaxFileSize = uint64_t{kMaxFileBlocks} * kBlockSize;
inline constexpr uint32_t kMaxNameLength = 128;

// Files, directories, registry keys and values are all inodes. Each inode names its parent and
// carries its own name (as NTFS file records do), so the tree needs no directory blocks and can
// be rebuilt from the inode table alone.
struct DiskInode {
    uint32_t crc;     // CRC32C of the 256 bytes with crc = 0
    uint32_t number;  // its own inode number: catches a misplaced copy
    uint16_t type;    // NodeType
    uint8_t value_type;  // ValueType, for kValue only
    uint8_t name_length;
    uint32_t parent;
    uint64_t size;
    uint64_t transaction_id;  // the transaction that last wrote it
    uint32_t generation;      // bumped each time the slot is freed
    uint32_t reserved0;
    BlockRef direct[kDirectBlocks];
    BlockRef indirect;  // a block of kRefsPerIndirectBlock BlockRefs, for blocks >= kDirectBlocks
    char name[kMaxNameLength];
};
static_assert(sizeof(DiskInode) == 256);
static_assert(offsetof(DiskInode, number) == 4);
static_assert(offsetof(DiskInode, type) == 8);
static_assert(offsetof(DiskInode, value_type) == 10);
static_assert(offsetof(DiskInode, name_length) == 11);
static_assert(offsetof(DiskInode, parent) == 12);
static_assert(offsetof(DiskInode, size) == 16);
static_assert(offsetof(DiskInode, transaction_id) == 24);
static_assert(offsetof(DiskInode, generation) == 32);
static_assert(offsetof(DiskInode, direct) == 40);
static_assert(offsetof(DiskInode, indirect) == 120);
static_assert(offsetof(DiskInode, name) == 128);
inline constexpr uint32_t kInodesPerBlock = kBlockSize / sizeof(DiskInode);

// A log record is one committed transaction: this header at the start of its first block, then
// a stream of operations (LogOp + payload) continuing through the following blocks.
struct LogRecordHeader {
    uint32_t magic;
    uint32_t header_crc;  // CRC32C of this header with header_crc = 0
    uint64_t volume_id;
    uint64_t lsn;  // position in the log (block count since format); must match where it lies
    uint64_t epoch;
    uint64_t transaction_id;
    uint32_t block_count;  // blocks the record occupies, including this one
    uint32_t payload_bytes;
    uint32_t payload_crc;  // CRC32C of the payload_bytes after this header
    uint32_t op_count;
    uint8_t reserved[8];
};
static_assert(sizeof(LogRecordHeader) == 64);
static_assert(offsetof(LogRecordHeader, header_crc) == 4);
static_assert(offsetof(LogRecordHeader, volume_id) == 8);
static_assert(offsetof(LogRecordHeader, lsn) == 16);
static_assert(offsetof(LogRecordHeader, epoch) == 24);
static_assert(offsetof(LogRecordHeader, transaction_id) == 32);
static_assert(offsetof(LogRecordHeader, block_count) == 40);
static_assert(offsetof(LogRecordHeader, payload_bytes) == 44);
static_assert(offsetof(LogRecordHeader, payload_crc) == 48);
static_assert(offsetof(LogRecordHeader, op_count) == 52);

// Redo operations. Each is idempotent, so replaying a record twice is harmless.
enum class LogOpKind : uint16_t {
    kInodeImage = 1,  // target = inode number; payload = the 256-byte DiskInode
    kBlockImage = 2,  // target = block number; payload = the 4 KiB block
    kAllocate = 3,    // target = first block, count = blocks; no payload
    kFree = 4,        // target = first block, count = blocks; no payload
};
struct LogOp {
    uint16_t kind;
    uint16_t reserved;
    uint32_t target;
    uint32_t count;
    uint32_t reserved2;
};
static_assert(sizeof(LogOp) == 16);
static_assert(offsetof(LogOp, target) == 4);
static_assert(offsetof(LogOp, count) == 8);

inline constexpr uint32_t log_op_payload_bytes(LogOpKind kind) {
    return kind == LogOpKind::kInodeImage ? sizeof(DiskInode) : kind == LogOpKind::kBlockImage ? kBlockSize : 0;
}

// The region layout follows from three numbers, so mkfs and mount compute it the same way and a
// superblock whose layout fields disagree is refused.
struct Layout {
    uint64_t block_count;
    uint32_t inode_count;
    uint32_t bitmap_blocks;
    uint32_t inode_table_blocks;
    uint32_t meta_start;
    uint32_t mirror_start;
    uint32_t log_start;
    uint32_t log_blocks;
    uint32_t data_start;
};
inline constexpr uint32_t kMinLogBlocks = 4;
inline constexpr uint32_t kMinInodes = kInodesPerBlock;

// False when the numbers do not give a usable volume (too small, too many inodes, > 2^32 blocks).
inline bool compute_layout(uint64_t block_count, uint32_t inode_count, uint32_t log_blocks, Layout& out) {
    if (block_count > 0xffffffffull || inode_count < kMinInodes || inode_count % kInodesPerBlock != 0 ||
        log_blocks < kMinLogBlocks)
        return false;
    out.block_count = block_count;
    out.inode_count = inode_count;
    out.bitmap_blocks = static_cast<uint32_t>((block_count + kBitsPerBitmapBlock - 1) / kBitsPerBitmapBlock);
    out.inode_table_blocks = inode_count / kInodesPerBlock;
    const uint64_t meta = uint64_t{out.bitmap_blocks} + out.inode_table_blocks;
    const uint64_t data_start = 2 + 2 * meta + log_blocks;
    if (data_start + 1 > block_count) return false;  // at least one data block
    out.meta_start = 2;
    out.mirror_start = static_cast<uint32_t>(2 + meta);
    out.log_start = static_cast<uint32_t>(2 + 2 * meta);
    out.log_blocks = log_blocks;
    out.data_start = static_cast<uint32_t>(data_start);
    return true;
}

}  // namespace txfs
