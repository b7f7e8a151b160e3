// The heartbeat service: lost after 5 s without an answer (reported once), resumed on the next
// answer (reported once), and the state `vmm ctl heartbeat` shows.
#include "ic_script.h"
#include "services/ic/heartbeat.h"

using namespace hvkvm::root::ic;
using namespace hvkvm::root::ic::test;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    std::vector<HeartbeatEvent> events;
    HeartbeatService service{[this](const HeartbeatEvent& event) { events.push_back(event); }};
    Script script{service};

    Fixture() {
        script.open();
        script.negotiate(kV3);
    }
    void answer() {
        const auto request = script.last_body<wire::HeartbeatMessage>();
        script.answer_last(wire::HeartbeatMessage{request.sequence + 1, 1, 0});
    }
    size_t count(HeartbeatEvent::Kind kind) const {
        return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.kind == kind; }));
    }
};

}  // namespace

TEST_CASE("heartbeat: one request a second, each answered sequence reported", "[ic][heartbeat]") {
    Fixture f;
    for (int i = 0; i < 5; ++i) {
        f.answer();
        f.script.advance(HeartbeatService::kPeriod);
    }
    CHECK(f.service.beats() == 5);
    CHECK(f.count(HeartbeatEvent::Kind::kBeat) == 5);
    // Each request carries the guest's last count on: 1 -> 2, 2 -> 3, ...
    CHECK(f.script.last_body<wire::HeartbeatMessage>().sequence == f.service.last_sequence());
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 0);
}

TEST_CASE("heartbeat: silent for 5 s is lost, reported once however long it lasts; the next answer resumes it", "[ic][heartbeat][hostile]") {
    Fixture f;
    f.answer();
    f.script.advance(HeartbeatService::kLostAfter - 1ms);
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 0);
    f.script.advance(HeartbeatService::kPeriod);  // the check at the next period sees >= 5 s
    REQUIRE(f.count(HeartbeatEvent::Kind::kLost) == 1);
    CHECK(f.events.back().silent >= HeartbeatService::kLostAfter);
    CHECK(f.service.is_lost());
    CHECK(f.service.report(f.script.now)["state"] == "lost");
    f.script.advance(60s);
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 1);

    f.answer();
    CHECK(f.count(HeartbeatEvent::Kind::kResumed) == 1);
    CHECK_FALSE(f.service.is_lost());
    CHECK(f.service.report(f.script.now)["state"] == "beating");
    f.script.advance(HeartbeatService::kLostAfter + HeartbeatService::kPeriod);
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 2);  // a second episode is a second report
}

TEST_CASE("heartbeat: a guest that opens the channel and never answers is lost 5 s after negotiating", "[ic][heartbeat][hostile]") {
    Fixture f;
    f.script.advance(HeartbeatService::kLostAfter + HeartbeatService::kPeriod);
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 1);
    CHECK(f.events.back().sequence == 0);
}

TEST_CASE("heartbeat: wrong answers do not count as beats, so they do not keep a guest alive", "[ic][heartbeat][hostile]") {
    Fixture f;
    f.answer();
    for (int i = 0; i < 7; ++i) {
        f.script.advance(HeartbeatService::kPeriod);
        const auto request = f.script.last_body<wire::HeartbeatMessage>();
        f.script.answer_last(wire::HeartbeatMessage{request.sequence + 2, 1, 0});
    }
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 1);
    CHECK(f.service.beats() == 1);
}

TEST_CASE("heartbeat: a closed channel is not a lost guest", "[ic][heartbeat]") {
    Fixture f;
    f.answer();
    f.service.close();
    f.script.advance(30s);
    CHECK(f.count(HeartbeatEvent::Kind::kLost) == 0);
    CHECK(f.service.report(f.script.now)["state"] == "not connected");
}

TEST_CASE("heartbeat: `vmm ctl heartbeat` shows the last sequence, state and age", "[ic][heartbeat]") {
    Fixture f;
    f.answer();
    f.script.advance(HeartbeatService::kPeriod);
    f.answer();
    const auto report = f.service.report(f.script.now + 250ms);
    CHECK(report["state"] == "beating");
    CHECK(report["sequence"] == 3);
    CHECK(report["beats"] == 2);
    CHECK(report["application_state"] == "healthy");
    CHECK(report["age_ms"] == 250);
    ControlReply reply = [](nlohmann::json) {};
    CHECK(f.service.control({{"command", "heartbeat"}}, reply, f.script.now));
    ControlReply other = [](nlohmann::json) {};
    CHECK_FALSE(f.service.control({{"command", "kvp-get"}}, other, f.script.now));
}
