// storvsc's table of requests in flight (guest-kernel/drivers/storvsc/request_table.h), compiled
// for the host from the guest's header: what a completion's transaction id may and may not take.
#include <catch2/catch.hpp>
#include <cstdint>

#include "drivers/storvsc/request_table.h"

namespace {

using Table = hvkvm::guest::storvsc::RequestTable<int, 4>;
constexpr uint64_t kSlotBits = Table::kSlotBits;

}  // namespace

TEST_CASE("storvsc requests: a completion takes its request once, by the exact id", "[storvsc]") {
    Table table;
    const uint64_t id = table.claim(2, 42);
    CHECK(Table::slot_of(id) == 2);
    CHECK(table.id_in(2) == id);
    int request = 0;
    CHECK(table.take(id, request));
    CHECK(request == 42);
    CHECK(table.id_in(2) == 0);
    CHECK_FALSE(table.take(id, request));  // the same completion again
    CHECK(table.refused() == 1);
}

TEST_CASE("storvsc requests: unknown, stale and out-of-table ids are refused and counted", "[storvsc]") {
    Table table;
    int request = 0;
    const uint64_t first = table.claim(1, 7);
    REQUIRE(table.take(first, request));
    const uint64_t second = table.claim(1, 8);  // the slot's next request
    CHECK(second != first);
    CHECK_FALSE(table.take(first, request));  // the earlier request's id: stale
    CHECK_FALSE(table.take(0, request));       // never used
    CHECK_FALSE(table.take(second + (uint64_t{1} << kSlotBits), request));  // right slot, wrong sequence
    CHECK_FALSE(table.take(uint64_t{1} << kSlotBits | 0, request));           // slot 0: never claimed
    // The last slot fits; one past the table is refused (slot 4 of 4).
    const uint64_t last = table.claim(3, 9);
    CHECK(Table::slot_of(last) == 3);
    CHECK_FALSE(table.take(last - 3 + 4, request));
    CHECK(table.refused() == 5);
    CHECK(table.take(last, request));
    CHECK(request == 9);
    CHECK(table.take(second, request));  // still there: nothing refused disturbed it
    CHECK(request == 8);
}

TEST_CASE("storvsc requests: cancel and completion race for a request, exactly one wins", "[storvsc]") {
    Table table;
    int request = 0;
    const uint64_t id = table.claim(0, 5);
    CHECK(table.cancel(0, id, request));  // e.g. the send failed
    CHECK(request == 5);
    CHECK_FALSE(table.take(id, request));  // a completion arriving anyway finds nothing
    const uint64_t next = table.claim(0, 6);
    CHECK(table.take(next, request));
    CHECK_FALSE(table.cancel(0, next, request));  // the completion came first
    CHECK_FALSE(table.cancel(0, 0, request));     // a free slot
}
