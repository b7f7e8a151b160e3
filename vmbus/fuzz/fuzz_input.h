// Reads a fuzzer's input as a stream of little fields; past the end everything reads as zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace hvkvm::vmbus::fuzz {

// An invariant the target checks: a violation is a crash libFuzzer reports.
inline void check(bool condition) {
    if (!condition) std::abort();
}

class FuzzInput {
public:
    FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    template <typename T>
    T take() {
        T value{};
        const size_t count = remaining() < sizeof(T) ? remaining() : sizeof(T);
        std::memcpy(&value, data_ + position_, count);
        position_ += count;
        return value;
    }
    // Up to `size` bytes: a view of what is left, advanced past.
    const uint8_t* take_bytes(size_t size, size_t& taken) {
        taken = remaining() < size ? remaining() : size;
        const uint8_t* bytes = data_ + position_;
        position_ += taken;
        return bytes;
    }
    size_t remaining() const { return size_ - position_; }

private:
    const uint8_t* data_;
    size_t size_;
    size_t position_ = 0;
};

}  // namespace hvkvm::vmbus::fuzz
