// The shutdown service (a request per `shutdown` command, the guest's answer passed back) and the
// time-sync service (SYNC at open and after a host clock step, SAMPLE every 5 s).
#include "ic_script.h"
#include "services/ic/shutdown.h"
#include "services/ic/timesync.h"

using namespace hvkvm::root::ic;
using namespace hvkvm::root::ic::test;
using namespace std::chrono_literals;

namespace {

struct ShutdownFixture {
    ShutdownService service;
    Script script{service};
    ControlAnswers answers;

    ShutdownFixture() {
        script.open();
        script.negotiate(kV3);
    }
    bool ask(const nlohmann::json& request) { return answers.ask(service, request, script.now); }
};

}  // namespace

TEST_CASE("shutdown: refused at once while the guest has not opened the channel", "[ic][shutdown]") {
    ShutdownService service;
    ControlAnswers answers;
    REQUIRE(answers.ask(service, {{"command", "shutdown"}}, Clock::now()));
    REQUIRE(answers.received.size() == 1);
    CHECK(answers.received[0]["ok"] == false);
    CHECK(answers.received[0]["error"].get<std::string>().find("has not opened the shutdown channel") != std::string::npos);
}

TEST_CASE("shutdown: a planned, unforced request with the deadline in seconds; the guest's acceptance is the answer", "[ic][shutdown]") {
    ShutdownFixture f;
    auto& [service, script, answers] = f;
    REQUIRE(f.ask({{"command", "shutdown"}, {"timeout_ms", 2001}}));
    CHECK(answers.received.empty());  // waits for the guest
    const auto request = script.last_body<wire::ShutdownMessage>();
    CHECK(request.reason_code == wire::kShutdownReasonPlanned);
    CHECK(request.timeout_seconds == 3);
    CHECK(request.flags == 0);
    CHECK(std::string(request.message).find("shutdown") != std::string::npos);

    // A second request while the first waits is refused at once.
    ControlAnswers second;
    REQUIRE(second.ask(service, {{"command", "shutdown"}}, script.now));
    CHECK(second.received.at(0)["ok"] == false);

    script.answer_last(request);
    REQUIRE(answers.received.size() == 1);
    CHECK(answers.received[0] == nlohmann::json{{"ok", true}, {"accepted", true}});
}

TEST_CASE("shutdown: a refusal, a silent guest and a malformed answer each answer the request with an error", "[ic][shutdown][hostile]") {
    ShutdownFixture f;
    auto& [service, script, answers] = f;

    REQUIRE(f.ask({{"command", "shutdown"}}));
    script.answer_last(script.last_body<wire::ShutdownMessage>(), wire::kStatusFail);
    REQUIRE(answers.received.size() == 1);
    CHECK(answers.received[0]["error"] == "the guest refused to shut down (status 0x80004005)");

    REQUIRE(f.ask({{"command", "shutdown"}}));
    script.advance(IcService::kDefaultTimeout);
    REQUIRE(answers.received.size() == 2);
    CHECK(answers.received[1]["error"] == "shutdown request: the guest did not answer in time");

    REQUIRE(f.ask({{"command", "shutdown"}}));
    auto spoiled = script.response_to_last(script.last_body<wire::ShutdownMessage>());
    poke<uint16_t>(spoiled, kHeaderAt + offsetof(wire::Header, type), uint16_t{1});
    script.deliver(script.last().transaction_id, spoiled);
    REQUIRE(answers.received.size() == 3);
    CHECK(answers.received[2]["ok"] == false);
    CHECK(service.counters().bad_answers == 1);
}

TEST_CASE("shutdown: closing the channel answers a waiting request", "[ic][shutdown]") {
    ShutdownFixture f;
    REQUIRE(f.ask({{"command", "shutdown"}}));
    f.service.close();
    auto& answers = f.answers;
    REQUIRE(answers.received.size() == 1);
    CHECK(answers.received[0]["error"] == "shutdown request: the channel closed");
}

namespace {

// A host clock the test moves: the wall clock and the reference clock advance with the script's
// clock, and the wall clock can be stepped.
class TestClocks final : public TimeSource {
public:
    void follow(const Clock::time_point& now) {
        now_ = &now;
        start_ = now;
    }
    TimeReading read() override {
        const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(*now_ - start_).count() / 100;
        const auto reference = static_cast<uint64_t>(elapsed) + 5'000'000;
        return {static_cast<uint64_t>(static_cast<int64_t>(kWall + reference) + step_), reference};
    }
    void step(std::chrono::milliseconds by) { step_ += by.count() * 10'000; }

    static constexpr uint64_t kWall = 133'000'000'000'000'000ull;  // some day in 2022

private:
    const Clock::time_point* now_ = nullptr;
    Clock::time_point start_{};
    int64_t step_ = 0;
};

struct TimeFixture {
    TestClocks clocks;
    TimeSyncService service{clocks};
    Script script{service};

    TimeFixture() {
        clocks.follow(script.now);
        script.open();
        script.negotiate(wire::Versions{{3, 0}, {4, 0}});
    }
    wire::TimeSyncMessage last() { return script.last_body<wire::TimeSyncMessage>(); }
    void answer() { script.answer_last(last()); }
};

}  // namespace

TEST_CASE("timesync: SYNC at open with the host's wall clock and the reference time it was read at", "[ic][timesync]") {
    TimeFixture f;
    const auto sync = f.last();
    CHECK(sync.flags == wire::kTimeSyncFlagSync);
    CHECK(sync.parent_time == TestClocks::kWall + 5'000'000);
    CHECK(sync.reference_time == 5'000'000);
    f.answer();
}

TEST_CASE("timesync: a SAMPLE every 5 s", "[ic][timesync]") {
    TimeFixture f;
    f.answer();
    const size_t sent = f.script.sent_count();
    f.script.advance(TimeSyncService::kSamplePeriod - 1s);
    CHECK(f.script.sent_count() == sent);
    f.script.advance(1s);
    REQUIRE(f.script.sent_count() == sent + 1);
    const auto sample = f.last();
    CHECK(sample.flags == wire::kTimeSyncFlagSample);
    CHECK(sample.reference_time == 5'000'000 + 5 * 10'000'000);
    CHECK(sample.parent_time - sample.reference_time == TestClocks::kWall);
}

TEST_CASE("timesync: a host clock step of more than 100 ms is followed by a SYNC within a second; drift below it is not", "[ic][timesync]") {
    TimeFixture f;
    f.answer();
    const size_t sent = f.script.sent_count();
    f.clocks.step(100ms);  // exactly the threshold: not a step
    f.script.advance(TimeSyncService::kStepCheckPeriod);
    CHECK(f.script.sent_count() == sent);
    f.clocks.step(-101ms);
    f.script.advance(TimeSyncService::kStepCheckPeriod);
    REQUIRE(f.script.sent_count() == sent + 1);
    const auto sync = f.last();
    CHECK(sync.flags == wire::kTimeSyncFlagSync);
    CHECK(static_cast<int64_t>(sync.parent_time - sync.reference_time) == static_cast<int64_t>(TestClocks::kWall) - 10'000);
    CHECK(f.service.describe()["host_clock_steps"] == 1);
}

TEST_CASE("timesync: a guest that never answers still gets SYNC after a step, once the request times out", "[ic][timesync][hostile]") {
    TimeFixture f;
    const size_t sent = f.script.sent_count();  // the first SYNC, never answered
    f.clocks.step(5000ms);
    f.script.advance(TimeSyncService::kStepCheckPeriod);  // busy: the SYNC waits
    CHECK(f.script.sent_count() == sent);
    f.script.advance(TimeSyncService::kStepCheckPeriod);  // the first timed out at 1.5 s
    REQUIRE(f.script.sent_count() == sent + 1);
    CHECK(f.last().flags == wire::kTimeSyncFlagSync);
}
