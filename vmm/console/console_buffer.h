// The guest console's backlog: a fixed-size ring of bytes between the vCPUs that produce console
// output and the one thread that writes it out. A write that does not fit is dropped whole (a
// line stays a line), and counted. Not synchronised: ConsoleOutput guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hvkvm::vmm {

class ConsoleBuffer {
public:
    explicit ConsoleBuffer(size_t capacity) : storage_(capacity) {}

    // Appends all of `bytes`, or nothing if they do not fit; returns whether they did.
    bool append(std::span<const uint8_t> bytes);
    // The oldest buffered bytes that lie contiguously in the ring (empty if none). They stay valid
    // and unchanged until consume(): append() only ever writes to free space.
    std::span<const uint8_t> oldest() const;
    void consume(size_t count);
    void clear() { head_ = size_ = 0; }

    size_t size() const { return size_; }
    size_t capacity() const { return storage_.size(); }
    bool empty() const { return size_ == 0; }

private:
    std::vector<uint8_t> storage_;
    size_t head_ = 0;  // index of the oldest byte
    size_t size_ = 0;
};

}  // namespace hvkvm::vmm
