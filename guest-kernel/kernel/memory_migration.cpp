#include "kernel/memory_migration.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/time.h"
#include "kernel/interrupts.h"
#include "kernel/panic.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "mm/migration.h"
#include "mm/node_topology.h"

namespace hvkvm::guest::migration {
namespace {

constexpr uint8_t kPageFaultVector = 14;

// The migration thread's state: one per VM.
struct Migrator {
    Event wakeup{Event::Reset::kAuto};
    uint64_t pages_per_second = kDefaultPagesPerSecond;
    sched::Thread* thread = nullptr;
} migrator;

bool handle_page_fault(x86::TrapFrame& frame) { return mm::wait_for_migrating_page(x86::read_cr2(), frame.error_code); }

void wake() { migrator.wakeup.set(); }

// One pass per period (its budget is the period's share of the rate), until nothing is left.
void migrate_until_settled() {
    for (;;) {
        const uint64_t pages_per_second = rate();
        if (pages_per_second == 0) return;  // stopped; set_rate() wakes the thread again
        const uint64_t started = time::now_ns();
        const mm::MigrationPass pass = mm::migrate_misplaced_pages(budget_per_pass(pages_per_second));
        if (pass.misplaced_left == 0) return;
        const uint64_t next = started + (pass.migrated == 0 ? kBlockedRetryNs : kPeriodNs);
        const uint64_t now = time::now_ns();
        if (now < next) sched::sleep_ns(next - now);
    }
}

void migration_thread(void*) {
    for (;;) {
        migrator.wakeup.wait();
        migrate_until_settled();
    }
}

}  // namespace

void start(uint64_t pages_per_second) {
    interrupts::set_exception_handler(kPageFaultVector, handle_page_fault);
    __atomic_store_n(&migrator.pages_per_second, pages_per_second, __ATOMIC_RELAXED);
    if (mm::node_count() < 2) return;  // nothing can be away from home
    sched::ThreadOptions options;
    options.name = "numa-migrate";
    migrator.thread = sched::create_thread(migration_thread, nullptr, options);
    if (!migrator.thread) panic("cannot create the page migration thread");
    sched::detach(migrator.thread);
    mm::set_migration_wakeup(wake);
}

void set_rate(uint64_t pages_per_second) {
    __atomic_store_n(&migrator.pages_per_second, pages_per_second, __ATOMIC_RELAXED);
    if (migrator.thread) wake();
}

uint64_t rate() { return __atomic_load_n(&migrator.pages_per_second, __ATOMIC_RELAXED); }

uint64_t budget_per_pass(uint64_t pages_per_second) {
    const uint64_t budget = pages_per_second * kPeriodNs / 1'000'000'000ull;
    return budget ? budget : 1;
}

}  // namespace hvkvm::guest::migration
