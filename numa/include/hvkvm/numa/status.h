// The outcome of a check on outside input: success, or one message that says where and why
// ("SRAT entry 3: ..."). Freestanding: the message lives in a fixed buffer sized so that the
// guest's panic record (abi::kCrashMessageMax) holds it whole.
#pragma once

#include <stddef.h>

namespace hvkvm::numa {

class [[nodiscard]] Status {
public:
    static constexpr size_t kMessageCapacity = 120;

    static Status ok() { return Status(); }
    // printf-style; the message is cut to kMessageCapacity - 1 characters.
    __attribute__((format(printf, 1, 2))) static Status failure(const char* format, ...);
    // The same failure with `prefix` and ": " in front, for a caller that adds where it was.
    __attribute__((format(printf, 2, 3))) Status with_prefix(const char* format, ...) const;

    bool is_ok() const { return message_[0] == '\0'; }
    explicit operator bool() const { return is_ok(); }
    // "" when ok.
    const char* message() const { return message_; }

private:
    Status() = default;
    char message_[kMessageCapacity] = {};
};

}  // namespace hvkvm::numa
