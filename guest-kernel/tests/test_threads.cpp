#include "tests/test_threads.h"

#include "lib/bits.h"

namespace hvkvm::guest::test {
namespace {

constexpr uint32_t kMaxThreads = 256;

struct Launch {
    void (*body)(void*, uint32_t);
    void* context;
    uint32_t index;
};

void launch_body(void* argument) {
    auto* launch = static_cast<Launch*>(argument);
    launch->body(launch->context, launch->index);
}

}  // namespace

uint32_t nth_online_cpu(uint32_t index) {
    const uint64_t online = smp::online_mask();
    index %= popcount64(online);
    uint64_t rest = online;
    for (uint32_t i = 0; i < index; ++i) rest &= rest - 1;
    return static_cast<uint32_t>(__builtin_ctzll(rest));
}

uint32_t last_online_cpu() { return 63 - static_cast<uint32_t>(__builtin_clzll(smp::online_mask())); }

bool run_in_threads(uint32_t count, Placement placement, void (*body)(void*, uint32_t), void* context) {
    if (count > kMaxThreads) return false;
    static Launch launches[kMaxThreads];  // tests run one at a time
    sched::Thread* threads[kMaxThreads] = {};
    bool all_created = true;
    for (uint32_t i = 0; i < count; ++i) {
        launches[i] = Launch{body, context, i};
        sched::ThreadOptions options;
        options.name = "test-worker";
        if (placement == Placement::kOnePerCpu) options.affinity = 1ull << nth_online_cpu(i);
        if (placement == Placement::kSameCpu) options.affinity = 1ull << last_online_cpu();
        if (placement != Placement::kFree) options.ideal_cpu = static_cast<uint32_t>(__builtin_ctzll(options.affinity));
        threads[i] = sched::create_thread(launch_body, &launches[i], options);
        all_created &= threads[i] != nullptr;
    }
    for (uint32_t i = 0; i < count; ++i)
        if (threads[i]) sched::join(threads[i]);
    return all_created;
}

}  // namespace hvkvm::guest::test
