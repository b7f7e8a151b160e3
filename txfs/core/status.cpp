#include "core/status.h"

namespace txfs {

const char* status_name(Status status) {
    switch (status) {
        case Status::kOk: return "ok";
        case Status::kNotFound: return "not found";
        case Status::kAlreadyExists: return "already exists";
        case Status::kConflict: return "conflict: held by another transaction";
        case Status::kNoSpace: return "no space";
        case Status::kTooLarge: return "too large";
        case Status::kInvalidArgument: return "invalid argument";
        case Status::kWrongType: return "wrong type";
        case Status::kNotEmpty: return "not empty";
        case Status::kCorrupt: return "corrupt: checksum mismatch, object taken offline";
        case Status::kOffline: return "offline: damaged object";
        case Status::kIoError: return "I/O error";
        case Status::kNoMemory: return "out of memory";
        case Status::kBadImage: return "not a valid txfs image";
        case Status::kReadOnly: return "read-only";
    }
    return "unknown status";
}

}  // namespace txfs
