// Freestanding containers over Platform memory: a growable Vector of trivially copyable values,
// an owned byte Buffer, and new/delete through the Platform. Allocation failure is reported,
// never thrown.
#pragma once

#include <new>
#include <stddef.h>
#include <stdint.h>
#include <type_traits>

#include "core/interfaces.h"

namespace txfs {

template <typename T, typename... Args>
T* create_object(Platform& platform, Args&&... args) {
    void* memory = platform.allocate(sizeof(T));
    return memory ? new (memory) T(static_cast<Args&&>(args)...) : nullptr;
}

template <typename T>
void destroy_object(Platform& platform, T* object) {
    if (!object) return;
    object->~T();
    platform.release(object, sizeof(T));
}

template <typename T>
class Vector {
    static_assert(std::is_trivially_copyable_v<T>, "Vector moves elements with memcpy");

public:
    explicit Vector(Platform& platform) : platform_(&platform) {}
    ~Vector() { reset(); }
    Vector(const Vector&) = delete;
    Vector& operator=(const Vector&) = delete;

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T* data() { return data_; }
    const T* data() const { return data_; }
    T& operator[](size_t index) { return data_[index]; }
    const T& operator[](size_t index) const { return data_[index]; }
    T* begin() { return data_; }
    T* end() { return data_ + size_; }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + size_; }
    T& back() { return data_[size_ - 1]; }

    [[nodiscard]] bool reserve(size_t capacity) {
        if (capacity <= capacity_) return true;
        T* grown = static_cast<T*>(platform_->allocate(capacity * sizeof(T)));
        if (!grown) return false;
        if (size_) __builtin_memcpy(grown, data_, size_ * sizeof(T));
        if (data_) platform_->release(data_, capacity_ * sizeof(T));
        data_ = grown;
        capacity_ = capacity;
        return true;
    }
    [[nodiscard]] bool push_back(const T& value) {
        if (size_ == capacity_ && !reserve(capacity_ ? capacity_ * 2 : 8)) return false;
        data_[size_++] = value;
        return true;
    }
    // New elements are zero-filled.
    [[nodiscard]] bool resize(size_t size) {
        if (!reserve(size)) return false;
        if (size > size_) __builtin_memset(static_cast<void*>(data_ + size_), 0, (size - size_) * sizeof(T));
        size_ = size;
        return true;
    }
    [[nodiscard]] bool append(const T* items, size_t count) {
        if (size_ + count > capacity_ && !reserve(size_ + count > capacity_ * 2 ? size_ + count : capacity_ * 2)) return false;
        __builtin_memcpy(data_ + size_, items, count * sizeof(T));
        size_ += count;
        return true;
    }
    void pop_back() { --size_; }
    void erase_unordered(size_t index) { data_[index] = data_[--size_]; }
    void clear() { size_ = 0; }
    void reset() {
        if (data_) platform_->release(data_, capacity_ * sizeof(T));
        data_ = nullptr;
        size_ = capacity_ = 0;
    }

private:
    Platform* platform_;
    T* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

// A fixed-size zero-filled byte array.
class Buffer {
public:
    explicit Buffer(Platform& platform) : platform_(&platform) {}
    ~Buffer() { reset(); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    [[nodiscard]] bool allocate(size_t size) {
        reset();
        if (size == 0) return true;
        data_ = static_cast<uint8_t*>(platform_->allocate(size));
        if (!data_) return false;
        __builtin_memset(data_, 0, size);
        size_ = size;
        return true;
    }
    void reset() {
        if (data_) platform_->release(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }
    uint8_t* data() { return data_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

private:
    Platform* platform_;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace txfs
