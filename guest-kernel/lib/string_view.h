// A non-owning view of characters, for the freestanding kernel (the standard one pulls in
// exception-throwing members).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::guest {

class StringView {
public:
    constexpr StringView() = default;
    constexpr StringView(const char* data, size_t size) : data_(data), size_(size) {}
    constexpr StringView(const char* text) : data_(text), size_(0) {  // NOLINT: implicit from literals
        while (text[size_]) ++size_;
    }

    constexpr const char* data() const { return data_; }
    constexpr size_t size() const { return size_; }
    constexpr bool empty() const { return size_ == 0; }
    constexpr char operator[](size_t i) const { return data_[i]; }

    constexpr bool operator==(StringView other) const {
        if (size_ != other.size_) return false;
        for (size_t i = 0; i < size_; ++i)
            if (data_[i] != other.data_[i]) return false;
        return true;
    }
    constexpr bool starts_with(StringView prefix) const {
        return prefix.size_ <= size_ && StringView(data_, prefix.size_) == prefix;
    }
    constexpr StringView substr(size_t start, size_t count = static_cast<size_t>(-1)) const {
        if (start > size_) start = size_;
        if (count > size_ - start) count = size_ - start;
        return StringView(data_ + start, count);
    }
    static constexpr size_t npos = static_cast<size_t>(-1);
    constexpr size_t find(char c, size_t from = 0) const {
        for (size_t i = from; i < size_; ++i)
            if (data_[i] == c) return i;
        return npos;
    }

private:
    const char* data_ = "";
    size_t size_ = 0;
};

// A decimal number without sign or suffix that fits 64 bits.
constexpr bool parse_decimal(StringView text, uint64_t& value) {
    if (text.empty()) return false;
    value = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        const auto digit = static_cast<uint64_t>(text[i] - '0');
        if (value > (~0ull - digit) / 10) return false;  // value * 10 + digit would not fit
        value = value * 10 + digit;
    }
    return true;
}

}  // namespace hvkvm::guest
