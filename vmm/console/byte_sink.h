#pragma once

#include <cstdint>
#include <span>

namespace hvkvm::devices {

// Where a character device's output goes (the VMM's console: stdout or a file).
class ByteSink {
public:
    virtual ~ByteSink() = default;
    virtual void write(std::span<const uint8_t> bytes) = 0;
};

}  // namespace hvkvm::devices
