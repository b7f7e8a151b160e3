// The VSPs' poll window (poll_window.h): a packet published before or during the window is a hit,
// found without waiting for the window to end; an empty ring is a miss after the window's length
// and no longer (so an idle channel stops spending CPU); a zero window looks exactly once; misses
// back off (the next 1, 2, 4, ... 256 drains look once) until a window hits.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "poll_window.h"
#include "vmbus/ring/ring_writer.h"
#include "vmbus/tests/ring_fixture.h"

using hvkvm::root::PollWindow;
using hvkvm::vmbus::ring::IncomingPacket;
using hvkvm::vmbus::ring::RingError;
using hvkvm::vmbus::ring::RingReader;
using hvkvm::vmbus::ring::RingWriter;
using namespace std::chrono_literals;

namespace {

struct Ring {
    Ring() {
        REQUIRE(writer.attach(ring.memory()) == RingError::kOk);
        REQUIRE(reader.attach(ring.memory()) == RingError::kOk);
        reader.mask_signals();  // as a VSP polls: masked
    }
    void publish_one() {
        const uint64_t payload = 42;
        REQUIRE(writer.write_inband(1, &payload, sizeof payload, true) == RingError::kOk);
        writer.publish();
    }
    hvkvm::vmbus::test::TestRing ring{1};
    RingWriter writer;
    RingReader reader;
};

std::chrono::nanoseconds time_of(auto&& action) {
    const auto start = PollWindow::Clock::now();
    action();
    return PollWindow::Clock::now() - start;
}

}  // namespace

TEST_CASE("poll window: a packet already published is a hit at once", "[poll-window]") {
    Ring ring;
    ring.publish_one();
    PollWindow window(10s);
    bool hit = false;
    CHECK(time_of([&] { hit = window.wait_for_data(ring.reader); }) < 1s);
    CHECK(hit);
    CHECK(window.hits() == 1);
    CHECK(window.misses() == 0);
}

TEST_CASE("poll window: an empty ring is a miss after the window, not before and not much later", "[poll-window]") {
    Ring ring;
    PollWindow window(20ms);
    bool hit = true;
    const auto took = time_of([&] { hit = window.wait_for_data(ring.reader); });
    CHECK_FALSE(hit);
    CHECK(took >= 20ms);
    CHECK(took < 2s);  // bounded: a loaded host may deschedule the poller, never by seconds here
    CHECK(window.hits() == 0);
    CHECK(window.misses() == 1);
    CHECK(ring.ring.control().interrupt_mask != 0);  // the window leaves unmasking to the VSP
}

TEST_CASE("poll window: a zero window looks once", "[poll-window]") {
    Ring ring;
    PollWindow window(0ns);
    CHECK_FALSE(window.wait_for_data(ring.reader));
    ring.publish_one();
    CHECK(window.wait_for_data(ring.reader));
    CHECK(window.skipped() == 2);
    CHECK(window.hits() + window.misses() == 0);
}

TEST_CASE("poll window: misses back off 1, 2, 4, ... 256 drains, and a hit ends the backoff", "[poll-window]") {
    Ring ring;
    PollWindow window(2ms);
    auto looks_once = [&] {  // a skipped drain: no window, however long the window is
        bool hit = true;
        CHECK(time_of([&] { hit = window.wait_for_data(ring.reader); }) < 1s);
        CHECK_FALSE(hit);
    };
    uint32_t expected_backoff = PollWindow::kFirstBackoff;
    uint64_t skipped = 0;
    for (uint32_t miss = 1; miss <= 10; ++miss) {
        CHECK(time_of([&] { CHECK_FALSE(window.wait_for_data(ring.reader)); }) >= 2ms);  // a window, missed
        CHECK(window.misses() == miss);
        for (uint32_t i = 0; i < expected_backoff; ++i) looks_once();
        skipped += expected_backoff;
        CHECK(window.skipped() == skipped);
        expected_backoff = std::min(expected_backoff * 2, PollWindow::kMaxBackoff);
    }
    CHECK(expected_backoff == PollWindow::kMaxBackoff);  // 1 ... 256 (9 misses), then it stays at 256
    // The next drain probes with a window; data there is a hit, and the one after polls again.
    ring.publish_one();
    CHECK(window.wait_for_data(ring.reader));
    CHECK(window.hits() == 1);
    IncomingPacket packet;
    REQUIRE(ring.reader.next(packet) == RingError::kOk);
    ring.reader.release();
    CHECK(time_of([&] { CHECK_FALSE(window.wait_for_data(ring.reader)); }) >= 2ms);
    CHECK(window.misses() == 11);
    CHECK(window.skipped() == skipped);
}

TEST_CASE("poll window: a packet published during the window ends it early, with no signal owed", "[poll-window]") {
    Ring ring;
    PollWindow window(30s);
    std::atomic<bool> written{false}, signal_owed{true};
    std::thread writer([&] {  // no Catch2 assertions off the main thread
        std::this_thread::sleep_for(5ms);
        const uint64_t payload = 7;
        written = ring.writer.write_inband(2, &payload, sizeof payload, true) == RingError::kOk;
        signal_owed = ring.writer.publish();  // the reader is masked: the writer need not signal
    });
    bool hit = false;
    const auto took = time_of([&] { hit = window.wait_for_data(ring.reader); });
    writer.join();
    REQUIRE(written);
    CHECK(hit);
    CHECK(took < 10s);
    CHECK_FALSE(signal_owed);
    CHECK(window.hits() == 1);
}
