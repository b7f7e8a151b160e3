// The guest log (hvkvm's own channel): lines queue here from any context, interrupts included,
// and the device's sender thread sends them, one in-band packet each, once the host has
// negotiated. The queue holds kQueueLines; a line that finds it full is dropped and counted, and
// the count rides on the next line that is queued (GuestLogMessage::dropped: lines lost just
// before this one), as does the count of lines the sender could not send, so the host can say
// how many it never saw and where. Lines queued before the channel opens wait for it.
#include <stdarg.h>

#include "arch/x86_64/time.h"
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"
#include "kernel/sched/mutex.h"
#include "lib/format.h"
#include "lib/string.h"

namespace hvkvm::guest::ic {
namespace {

constexpr wire::Version kSupported[] = {{1, 0}};
constexpr uint32_t kQueueLines = 64;
constexpr uint64_t kSendDeadlineNs = 100'000'000;  // a full ring: the line is dropped after this
constexpr uint64_t kFlushNs = 500'000'000;          // what stop() waits for the queue to empty
ServiceState service_state{wire::kGuestLog, wire::list_of(kSupported)};

struct Line {
    wire::GuestLogLevel level;
    uint32_t size;
    uint32_t dropped_before;  // lines lost between the previous line queued and this one
    char text[wire::kGuestLogMaxText];
};

struct Queue {
    SpinLock lock;  // guards everything below (taken with interrupts disabled)
    Line lines[kQueueLines];
    uint32_t head = 0, count = 0;
    uint64_t dropped_unreported = 0;
    GuestLogStats stats = {};
    Semaphore ready;  // one unit per queued line
} queue;

uint32_t queued() {
    IrqSpinLockGuard guard(queue.lock);
    return queue.count;
}

bool pop(Line& line) {
    IrqSpinLockGuard guard(queue.lock);
    if (queue.count == 0) return false;
    line = queue.lines[queue.head];
    queue.head = (queue.head + 1) % kQueueLines;
    --queue.count;
    return true;
}

void note_sent(bool sent) {
    IrqSpinLockGuard guard(queue.lock);
    ++(sent ? queue.stats.sent : queue.stats.dropped);
}

class GuestLogDevice final : public IcDevice {
public:
    explicit GuestLogDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options(8, 1)) {}

private:
    bool answer(const wire::Message&, wire::Packet&) override { return false; }  // the host asks nothing

    bool start_service() override {
        sched::ThreadOptions options;
        options.name = "guest-log";
        options.ideal_cpu = 0;
        sender_ = sched::create_thread(sender_entry, this, options);
        return sender_ != nullptr;
    }

    void stop_service() override {
        // What is queued goes out first (the kernel's last lines are often the interesting ones),
        // unless the host does not take it within kFlushNs.
        const uint64_t deadline = time::now_ns() + kFlushNs;
        while (queued() > 0 && service_state.is_negotiated() && time::now_ns() < deadline) sched::sleep_ns(1'000'000);
        __atomic_store_n(&stopping_, true, __ATOMIC_RELEASE);
        queue.ready.signal();  // wakes the sender (the unit is given back if a line still waits)
        sched::join(sender_);
        sender_ = nullptr;
    }

    static void sender_entry(void* self) { static_cast<GuestLogDevice*>(self)->send_lines(); }

    void send_lines() {
        for (;;) {
            queue.ready.wait();
            if (__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) {
                queue.ready.signal();  // not ours: a line's unit, for the next device
                return;
            }
            // Lines wait for the negotiation (the versions go into every message).
            while (!service_state.wait_negotiated(time::now_ns() + 100'000'000))
                if (__atomic_load_n(&stopping_, __ATOMIC_ACQUIRE)) {
                    queue.ready.signal();
                    return;
                }
            Line line;
            if (!pop(line)) continue;
            // Lines that did not fit the ring count as lost before the next one that does.
            const uint32_t lost = line.dropped_before + unsent_;
            const bool sent = send(line, lost);
            unsent_ = sent ? 0 : unsent_ + 1;
            note_sent(sent);
        }
    }

    bool send(const Line& line, uint32_t dropped) {
        if (!wire::build_guest_log(packet_, service_state.versions(), line.level, dropped, line.text, line.size)) return false;
        return channel()->send_inband(0, packet_.bytes, packet_.size, /*completion_requested=*/false,
                                      time::now_ns() + kSendDeadlineNs) == vmbus::ring::RingError::kOk;
    }

    sched::Thread* sender_ = nullptr;
    bool stopping_ = false;
    uint32_t unsent_ = 0;  // lines popped but not sent since the last line sent
    wire::Packet packet_;
};

vmbus::Driver driver{"ic-guest-log", wire::kGuestLog.interface_type, probe<GuestLogDevice>, remove<GuestLogDevice>, {}, false};

}  // namespace

vmbus::Driver& guest_log_driver() { return driver; }
ServiceState& guest_log_state() { return service_state; }

void guest_log(wire::GuestLogLevel level, const char* text, size_t size) {
    while (size > 0 && (text[size - 1] == '\n' || text[size - 1] == '\r')) --size;
    if (size == 0) return;
    {
        IrqSpinLockGuard guard(queue.lock);
        ++queue.stats.queued;
        if (queue.count == kQueueLines) {
            ++queue.stats.dropped;
            ++queue.dropped_unreported;
            return;
        }
        Line& line = queue.lines[(queue.head + queue.count) % kQueueLines];
        line.level = level;
        line.dropped_before = static_cast<uint32_t>(queue.dropped_unreported > 0xffffffffu ? 0xffffffffu : queue.dropped_unreported);
        queue.dropped_unreported = 0;
        line.size = static_cast<uint32_t>(size < sizeof line.text ? size : sizeof line.text);
        memcpy(line.text, text, line.size);
        ++queue.count;
    }
    queue.ready.signal();
}

void guest_log_printf(const char* format_string, ...) {
    char text[wire::kGuestLogMaxText];
    va_list arguments;
    va_start(arguments, format_string);
    size_t size = format_v(text, sizeof text, format_string, arguments);
    va_end(arguments);
    if (size >= sizeof text) size = sizeof text - 1;
    guest_log(wire::GuestLogLevel::kInfo, text, size);
}

void mirror_console_line(const char* text, size_t size) {
    // A console write may hold several lines: one log line each.
    size_t start = 0;
    for (size_t i = 0; i <= size; ++i) {
        if (i == size || text[i] == '\n') {
            if (i > start) guest_log(wire::GuestLogLevel::kInfo, text + start, i - start);
            start = i + 1;
        }
    }
}

GuestLogStats guest_log_stats() {
    IrqSpinLockGuard guard(queue.lock);
    return queue.stats;
}

}  // namespace hvkvm::guest::ic
