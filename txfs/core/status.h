// Result codes of every txfs operation (the core has no exceptions).
#pragma once

#include <stdint.h>

namespace txfs {

enum class Status : uint8_t {
    kOk,
    kNotFound,
    kAlreadyExists,
    kConflict,        // another transaction holds the object
    kNoSpace,         // out of blocks or inodes
    kTooLarge,        // over a format limit (file size, name, transaction bigger than the log)
    kInvalidArgument,
    kWrongType,       // e.g. a file operation on a directory or a key
    kNotEmpty,
    kCorrupt,         // a checksum mismatch was found; the object is now offline
    kOffline,         // the object is offline (damaged, awaiting or beyond repair)
    kIoError,         // the block device failed; the volume refuses further writes
    kNoMemory,
    kBadImage,        // mount refused: not a txfs volume, or its superblock/layout is invalid
    kReadOnly,
};

const char* status_name(Status status);

}  // namespace txfs
