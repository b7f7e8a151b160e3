#include "console/console_buffer.h"

#include <algorithm>
#include <cstring>

namespace hvkvm::vmm {

bool ConsoleBuffer::append(std::span<const uint8_t> bytes) {
    if (bytes.size() > capacity() - size_) return false;
    size_t tail = (head_ + size_) % capacity();
    while (!bytes.empty()) {
        const size_t run = std::min(bytes.size(), capacity() - tail);
        std::memcpy(storage_.data() + tail, bytes.data(), run);
        bytes = bytes.subspan(run);
        size_ += run;
        tail = (tail + run) % capacity();
    }
    return true;
}

std::span<const uint8_t> ConsoleBuffer::oldest() const {
    return {storage_.data() + head_, std::min(size_, capacity() - head_)};
}

void ConsoleBuffer::consume(size_t count) {
    count = std::min(count, size_);
    head_ = size_ == count ? 0 : (head_ + count) % capacity();
    size_ -= count;
}

}  // namespace hvkvm::vmm
