#include "guest_signals.h"

#include <unistd.h>

#include "hvkvm/abi/synic.h"

namespace hvkvm::root {

bool GuestSignals::signal(uint32_t vp, uint32_t flag) {
    using namespace abi::synic;
    if (vp >= sint_fds_.size() || flag >= kEventFlagsPerSint) return false;
    const uint64_t siefp = __atomic_load_n(&synic_.siefp_gpa[vp], __ATOMIC_ACQUIRE);
    if (siefp == 0) return false;
    auto flags = memory_.translate(siefp + uint64_t{kVmbusSint} * kEventFlagBytesPerSint, kEventFlagBytesPerSint);
    if (!flags) return false;
    auto* words = reinterpret_cast<uint64_t*>(flags->data());
    const uint64_t bit = uint64_t{1} << (flag % 64);
    ++signals_;
    if (__atomic_fetch_or(&words[flag / 64], bit, __ATOMIC_SEQ_CST) & bit) return true;  // already pending
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(sint_fds_[vp].get(), &one, sizeof one);
    ++interrupts_;
    return true;
}

}  // namespace hvkvm::root
