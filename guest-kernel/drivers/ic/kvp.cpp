// KVP (data exchange). The kernel keeps two pools: external (what the host sets; up to 64 pairs)
// and guest (what the kernel publishes with kvp_publish(); up to 64). The auto pool is computed
// when asked: the kernel's name and version, its architecture, CPU count, uptime, wall clock and
// the time-sync service's last correction.
// The host may GET and ENUMERATE any of them, SET and DELETE only in the external pool. A key it
// does not find, or an index past the end, is answered kStatusNoMoreItems (Linux's HV_S_CONT).
#include <new>

#include "arch/x86_64/time.h"
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"
#include "kernel/console.h"
#include "kernel/sync/cross_call.h"
#include "kernel/version.h"
#include "kernel/wall_clock.h"
#include "lib/format.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::ic {
namespace {

using wire::KvpOperation;
using wire::KvpPool;

constexpr wire::Version kSupported[] = {{3, 0}, {4, 0}, {5, 0}};
constexpr uint32_t kPoolCapacity = 64;
ServiceState service_state{wire::kKvp, wire::list_of(kSupported)};

// A key or value as UTF-8, in the kernel heap.
char* copy_text(const char* text, size_t size) {
    auto* copy = static_cast<char*>(mm::allocate(size + 1));
    if (!copy) return nullptr;
    memcpy(copy, text, size);
    copy[size] = '\0';
    return copy;
}

bool equal(const char* a, const char* b, size_t b_size) { return strlen(a) == b_size && memcmp(a, b, b_size) == 0; }

struct Pair {
    char* key = nullptr;
    char* value = nullptr;
};

// A pool of pairs in the order they were first set.
class Pool {
public:
    bool set(const char* key, size_t key_size, const char* value, size_t value_size) {
        MutexGuard guard(lock_);
        char* new_value = copy_text(value, value_size);
        if (!new_value) return false;
        if (Pair* pair = find_locked(key, key_size)) {
            mm::free(pair->value);
            pair->value = new_value;
            return true;
        }
        char* new_key = count_ < kPoolCapacity ? copy_text(key, key_size) : nullptr;
        if (!new_key) {
            mm::free(new_value);
            return false;
        }
        pairs_[count_++] = {new_key, new_value};
        return true;
    }
    bool erase(const char* key, size_t key_size) {
        MutexGuard guard(lock_);
        Pair* pair = find_locked(key, key_size);
        if (!pair) return false;
        mm::free(pair->key);
        mm::free(pair->value);
        for (Pair* next = pair + 1; next < pairs_ + count_; ++next) next[-1] = *next;
        --count_;
        return true;
    }
    // Copies the value of `key` into `value` (NUL-terminated); false if absent or too long.
    bool get(const char* key, size_t key_size, char* value, size_t capacity) {
        MutexGuard guard(lock_);
        const Pair* pair = find_locked(key, key_size);
        return pair && copy_out(pair->value, value, capacity);
    }
    bool at(uint32_t index, wire::KvpRecord& record) {
        MutexGuard guard(lock_);
        if (index >= count_) return false;
        return record.key.assign(pairs_[index].key, static_cast<uint32_t>(strlen(pairs_[index].key))) &&
               record.value.assign(pairs_[index].value, static_cast<uint32_t>(strlen(pairs_[index].value)));
    }
    uint32_t count() {
        MutexGuard guard(lock_);
        return count_;
    }

private:
    static bool copy_out(const char* text, char* out, size_t capacity) {
        const size_t size = strlen(text);
        if (size + 1 > capacity) return false;
        memcpy(out, text, size + 1);
        return true;
    }
    Pair* find_locked(const char* key, size_t key_size) {
        for (uint32_t i = 0; i < count_; ++i)
            if (equal(pairs_[i].key, key, key_size)) return &pairs_[i];
        return nullptr;
    }

    Mutex lock_;  // guards the pairs
    Pair pairs_[kPoolCapacity];
    uint32_t count_ = 0;
};

struct Store {
    Pool external;  // the host's
    Pool guest;     // the kernel's own
} store;

// The auto pool, computed at each question.
constexpr const char* kAutoKeys[] = {"FullyQualifiedDomainName", "IntegrationServicesVersion", "OSName", "OSVersion",
                                     "ProcessorArchitecture",    "ProcessorCount",             "UptimeSeconds",
                                     "WallClockUnixNs",          "TimeSyncLastErrorNs"};
constexpr uint32_t kAutoCount = sizeof kAutoKeys / sizeof kAutoKeys[0];

void auto_value(uint32_t index, char* value, size_t capacity) {
    switch (index) {
    case 0: format(value, capacity, "hvkvm-guest"); break;
    case 1: format(value, capacity, "hvkvm-ic %s", kKernelVersion); break;
    case 2: format(value, capacity, "hvkvm guest kernel"); break;
    case 3: format(value, capacity, "%s", kKernelVersion); break;
    case 4: format(value, capacity, "x86_64"); break;
    case 5: format(value, capacity, "%u", smp::online_count()); break;
    case 6: format(value, capacity, "%lu", time::now_ns() / 1'000'000'000); break;
    case 7: format(value, capacity, "%lu", time::wall_clock()); break;
    case 8: format(value, capacity, "%ld", time::kernel_wall_clock().stats().last_error_ns); break;
    default: value[0] = '\0';
    }
}

int32_t auto_index(const char* key, size_t key_size) {
    for (uint32_t i = 0; i < kAutoCount; ++i)
        if (equal(kAutoKeys[i], key, key_size)) return static_cast<int32_t>(i);
    return -1;
}

bool auto_at(uint32_t index, wire::KvpRecord& record) {
    if (index >= kAutoCount) return false;
    char value[64];
    auto_value(index, value, sizeof value);
    return record.key.assign(kAutoKeys[index], static_cast<uint32_t>(strlen(kAutoKeys[index]))) &&
           record.value.assign(value, static_cast<uint32_t>(strlen(value)));
}

Pool* stored_pool(KvpPool pool) {
    if (pool == KvpPool::kExternal) return &store.external;
    if (pool == KvpPool::kGuest) return &store.guest;
    return nullptr;
}

// The host's request, carried out on `record`: its answer's status.
uint32_t carry_out(wire::KvpRecord& record) {
    constexpr uint32_t kNone = wire::kStatusNoMoreItems;
    const char* key = record.key.bytes;
    const size_t key_size = record.key.size;
    switch (record.operation) {
    case KvpOperation::kSet:
        if (record.pool != KvpPool::kExternal) return wire::kStatusNotSupported;
        if (!store.external.set(key, key_size, record.value.bytes, record.value.size)) return wire::kStatusFail;
        kprint("kvp: the host set \"%.200s\" = \"%.200s\"\n", key, record.value.bytes);
        return wire::kStatusSuccess;
    case KvpOperation::kDelete:
        if (record.pool != KvpPool::kExternal) return wire::kStatusNotSupported;
        return store.external.erase(key, key_size) ? wire::kStatusSuccess : kNone;
    case KvpOperation::kGet: {
        if (record.pool == KvpPool::kAuto) {
            const int32_t index = auto_index(key, key_size);
            return index >= 0 && auto_at(static_cast<uint32_t>(index), record) ? wire::kStatusSuccess : kNone;
        }
        Pool* pool = stored_pool(record.pool);
        if (!pool) return kNone;
        record.value.size = 0;
        if (!pool->get(key, key_size, record.value.bytes, sizeof record.value.bytes)) return kNone;
        record.value.size = static_cast<uint32_t>(strlen(record.value.bytes));
        return wire::kStatusSuccess;
    }
    case KvpOperation::kEnumerate: {
        if (record.pool == KvpPool::kAuto) return auto_at(record.index, record) ? wire::kStatusSuccess : kNone;
        Pool* pool = stored_pool(record.pool);
        return pool && pool->at(record.index, record) ? wire::kStatusSuccess : kNone;
    }
    default: return wire::kStatusNotSupported;
    }
}

class KvpDevice final : public IcDevice {
public:
    explicit KvpDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options()) {}

private:
    bool answer(const wire::Message& request, wire::Packet& response) override {
        auto* record = new (std::nothrow) wire::KvpRecord;
        if (!record) return false;
        const wire::IcError error = wire::read_kvp_request(request, *record);
        const uint32_t status = error == wire::IcError::kNone          ? carry_out(*record)
                                : error == wire::IcError::kUnsupported ? wire::kStatusNotSupported
                                                                       : wire::kStatusFail;
        const bool built = wire::build_kvp_response(response, request, status, *record);
        delete record;
        return built;
    }
};

vmbus::Driver driver{"ic-kvp", wire::kKvp.interface_type, probe<KvpDevice>, remove<KvpDevice>, {}, false};

}  // namespace

vmbus::Driver& kvp_driver() { return driver; }
ServiceState& kvp_state() { return service_state; }

bool kvp_get(KvpPool pool, const char* key, char* value, size_t capacity) {
    const size_t key_size = strlen(key);
    if (pool == KvpPool::kAuto) {
        const int32_t index = auto_index(key, key_size);
        if (index < 0 || capacity == 0) return false;
        auto_value(static_cast<uint32_t>(index), value, capacity);
        return true;
    }
    Pool* stored = stored_pool(pool);
    return stored && stored->get(key, key_size, value, capacity);
}

bool kvp_publish(const char* key, const char* value) {
    const size_t key_size = strlen(key), value_size = strlen(value);
    // What the wire can carry: the codec's UTF-16 limits.
    uint8_t scratch[wire::kKvpMaxValueBytes];
    if (key_size == 0 || wire::utf8_to_utf16(key, static_cast<uint32_t>(key_size), scratch, wire::kKvpMaxKeyBytes) == 0 ||
        wire::utf8_to_utf16(value, static_cast<uint32_t>(value_size), scratch, wire::kKvpMaxValueBytes) == 0)
        return false;
    return store.guest.set(key, key_size, value, value_size);
}

uint32_t kvp_count(KvpPool pool) {
    if (pool == KvpPool::kAuto) return kAutoCount;
    Pool* stored = stored_pool(pool);
    return stored ? stored->count() : 0;
}

}  // namespace hvkvm::guest::ic
