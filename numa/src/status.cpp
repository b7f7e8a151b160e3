#include "hvkvm/numa/status.h"

#include <stdarg.h>

#include "lib/format.h"

namespace hvkvm::numa {

Status Status::failure(const char* format, ...) {
    Status status;
    va_list arguments;
    va_start(arguments, format);
    guest::format_v(status.message_, kMessageCapacity, format, arguments);
    va_end(arguments);
    // An empty message would read as success.
    if (status.message_[0] == '\0') guest::format(status.message_, kMessageCapacity, "failed");
    return status;
}

Status Status::with_prefix(const char* format, ...) const {
    if (is_ok()) return *this;
    Status status;
    va_list arguments;
    va_start(arguments, format);
    size_t length = guest::format_v(status.message_, kMessageCapacity, format, arguments);
    va_end(arguments);
    if (length < kMessageCapacity)
        guest::format(status.message_ + length, kMessageCapacity - length, ": %s", message_);
    return status;
}

}  // namespace hvkvm::numa
