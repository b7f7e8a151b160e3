// The KVP service (the host's pairs pushed at open, get across the guest's pools, list, the
// bounded queue, one transaction at a time) and the guest-log service (lines forwarded, hostile
// ones dropped, the root's own rate limit).
#include "ic_script.h"
#include "services/ic/guest_log.h"
#include "services/ic/kvp.h"

using namespace hvkvm::root::ic;
using namespace hvkvm::root::ic::test;
using namespace std::chrono_literals;

namespace {

constexpr wire::Versions kKvp5{{3, 0}, {5, 0}};

struct KvpFixture {
    KvpService service;
    Script script{service};
    ControlAnswers answers;

    bool ask(const nlohmann::json& request) { return answers.ask(service, request, script.now); }
    // What the guest sees of the outstanding request.
    wire::KvpRecord request() {
        wire::KvpRecord record;
        REQUIRE(wire::read_kvp_request(script.last_message(), record) == wire::IcError::kNone);
        return record;
    }
    // The guest answers the outstanding request with `answer` (strings for GET / ENUMERATE).
    void answer(uint32_t status, const std::string& key = "", const std::string& value = "") {
        wire::KvpRecord record = request();
        record.key.assign(key.data(), static_cast<uint32_t>(key.size()));
        record.value.assign(value.data(), static_cast<uint32_t>(value.size()));
        wire::Packet packet;
        REQUIRE(wire::build_kvp_response(packet, script.last_message(), status, record));
        script.deliver(script.last().transaction_id, packet);
    }
    void open() {
        script.open();
        script.negotiate(kKvp5);
    }
};

std::string text(const wire::KvpKeyText& t) { return std::string(t.bytes, t.size); }
std::string text(const wire::KvpValueText& t) { return std::string(t.bytes, t.size); }

}  // namespace

TEST_CASE("kvp: the config's pairs go to the guest's external pool as SETs when the channel opens, one at a time", "[ic][kvp]") {
    KvpFixture f;
    std::string error;
    REQUIRE(f.service.preset("Env", "test", error, f.script.now));
    REQUIRE(f.service.preset("Role", "web", error, f.script.now));
    f.open();
    auto set = f.request();
    CHECK(set.operation == wire::KvpOperation::kSet);
    CHECK(set.pool == wire::KvpPool::kExternal);
    CHECK(text(set.key) == "Env");
    CHECK(text(set.value) == "test");
    const size_t sent = f.script.sent_count();
    f.answer(wire::kStatusSuccess);
    REQUIRE(f.script.sent_count() == sent + 1);
    set = f.request();
    CHECK(text(set.key) == "Role");
    f.answer(wire::kStatusSuccess);
    CHECK(f.service.describe()["sets_delivered"] == 2);
}

TEST_CASE("kvp: set answers once the guest has stored the pair; before the channel opens it is kept for later", "[ic][kvp]") {
    KvpFixture f;
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", "early"}, {"value", "1"}}));
    CHECK(f.answers.received.at(0)["delivered"] == false);
    f.open();
    CHECK(text(f.request().key) == "early");
    f.answer(wire::kStatusSuccess);
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", "now"}, {"value", "2"}}));
    CHECK(f.answers.received.size() == 1);
    f.answer(wire::kStatusSuccess);
    REQUIRE(f.answers.received.size() == 2);
    CHECK(f.answers.received[1] == nlohmann::json{{"ok", true}, {"key", "now"}, {"pool", "external"}});
}

TEST_CASE("kvp: get asks the guest pool, then auto, then external, and says where it found the key", "[ic][kvp]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "OSName"}}));
    CHECK(f.request().pool == wire::KvpPool::kGuest);
    f.answer(wire::kStatusNoMoreItems);
    CHECK(f.request().pool == wire::KvpPool::kAuto);
    f.answer(wire::kStatusSuccess, "OSName", "hvkvm");
    REQUIRE(f.answers.received.size() == 1);
    CHECK(f.answers.received[0] == nlohmann::json{{"ok", true}, {"key", "OSName"}, {"value", "hvkvm"}, {"pool", "auto"}});

    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "missing"}}));
    for (int pool = 0; pool < 3; ++pool) f.answer(wire::kStatusNoMoreItems);
    REQUIRE(f.answers.received.size() == 2);
    CHECK(f.answers.received[1]["error"] == "the guest has no value for \"missing\"");
}

TEST_CASE("kvp: list enumerates external, guest and auto until each says no more items", "[ic][kvp]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-list"}}));
    CHECK(f.request().pool == wire::KvpPool::kExternal);
    CHECK(f.request().index == 0);
    f.answer(wire::kStatusSuccess, "Env", "test");
    CHECK(f.request().index == 1);
    f.answer(wire::kStatusNoMoreItems);
    CHECK(f.request().pool == wire::KvpPool::kGuest);
    f.answer(wire::kStatusNoMoreItems);
    CHECK(f.request().pool == wire::KvpPool::kAuto);
    f.answer(wire::kStatusSuccess, "OSName", "hvkvm");
    f.answer(wire::kStatusSuccess, "ProcessorCount", "2");
    f.answer(wire::kStatusNoMoreItems);
    REQUIRE(f.answers.received.size() == 1);
    const auto& pools = f.answers.received[0]["pools"];
    CHECK(pools["external"] == nlohmann::json{{"Env", "test"}});
    CHECK(pools["guest"] == nlohmann::json::object());
    CHECK(pools["auto"] == nlohmann::json{{"OSName", "hvkvm"}, {"ProcessorCount", "2"}});
    CHECK(f.answers.received[0]["truncated"] == false);
}

TEST_CASE("kvp: a guest that never says no more items is cut off at 64 entries per pool; big listings are truncated", "[ic][kvp][hostile]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-list"}}));
    uint32_t transactions = 0;
    while (f.answers.received.empty() && transactions < 1000) {
        const auto request = f.request();
        f.answer(wire::kStatusSuccess, "k" + std::to_string(request.index), std::string(100, 'v'));
        ++transactions;
    }
    REQUIRE(f.answers.received.size() == 1);
    CHECK(f.answers.received[0]["truncated"] == true);
    CHECK(f.answers.received[0].dump().size() < 4000);
    CHECK(transactions <= 3 * KvpService::kMaxListedPerPool);
}

TEST_CASE("kvp: keys and values beyond the wire's limits are refused before anything is sent", "[ic][kvp][hostile]") {
    KvpFixture f;
    f.open();
    const size_t sent = f.script.sent_count();
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", std::string(256, 'k')}, {"value", "v"}}));
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", "k"}, {"value", std::string(1024, 'v')}}));
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", ""}, {"value", "v"}}));
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", std::string(256, 'k')}}));
    CHECK(f.script.sent_count() == sent);
    REQUIRE(f.answers.received.size() == 4);
    for (const auto& answer : f.answers.received) CHECK(answer["ok"] == false);
    REQUIRE(f.ask({{"command", "kvp-set"}, {"key", std::string(255, 'k')}, {"value", std::string(1023, 'v')}}));
    CHECK(f.script.sent_count() == sent + 1);
}

TEST_CASE("kvp: the external pool holds 64 host pairs; a 65th is refused, a changed one is not", "[ic][kvp]") {
    KvpService service;
    std::string error;
    for (size_t i = 0; i < KvpService::kMaxHostPairs; ++i) REQUIRE(service.preset("k" + std::to_string(i), "v", error, Clock::now()));
    CHECK_FALSE(service.preset("one-more", "v", error, Clock::now()));
    CHECK(error == "the external pool is full (64 pairs)");
    CHECK(service.preset("k0", "changed", error, Clock::now()));
}

TEST_CASE("kvp: 32 requests wait while one is with the guest; the next is refused", "[ic][kvp]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "first"}}));  // with the guest
    for (size_t i = 1; i < KvpService::kMaxQueuedJobs; ++i) REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "k"}}));
    CHECK(f.answers.received.empty());
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "k"}}));
    REQUIRE(f.answers.received.size() == 1);
    CHECK(f.answers.received[0]["error"] == "too many KVP requests are waiting for the guest");
}

TEST_CASE("kvp: a malformed answer or a timeout fails that request and the queue moves on", "[ic][kvp][hostile]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-list"}}));
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "k"}}));
    // An enumeration answer for another index.
    wire::KvpRecord wrong = f.request();
    wrong.index = 7;
    wrong.key.assign("x", 1);
    wire::Packet packet;
    REQUIRE(wire::build_kvp_response(packet, f.script.last_message(), wire::kStatusSuccess, wrong));
    f.script.deliver(f.script.last().transaction_id, packet);
    REQUIRE(f.answers.received.size() == 1);
    CHECK(f.answers.received[0]["error"] == "KVP request: a malformed answer");
    CHECK(f.request().operation == wire::KvpOperation::kGet);
    f.script.advance(IcService::kDefaultTimeout);
    REQUIRE(f.answers.received.size() == 2);
    CHECK(f.answers.received[1]["error"] == "KVP request: the guest did not answer in time");
}

TEST_CASE("kvp: closing the channel answers every waiting request", "[ic][kvp]") {
    KvpFixture f;
    f.open();
    REQUIRE(f.ask({{"command", "kvp-get"}, {"key", "a"}}));
    REQUIRE(f.ask({{"command", "kvp-list"}}));
    f.service.close();
    REQUIRE(f.answers.received.size() == 2);
    for (const auto& answer : f.answers.received) CHECK(answer["ok"] == false);
}

namespace {

struct LogFixture {
    std::vector<std::pair<std::string, uint64_t>> lines;  // text, lost
    GuestLogService service{[this](const GuestLogEntry& entry) { lines.emplace_back(std::string(entry.text), entry.lost); }};
    Script script{service};

    LogFixture() {
        script.open();
        script.negotiate(wire::Versions{{3, 0}, {1, 0}});
    }
    void send(const std::string& line, uint32_t dropped = 0, wire::Versions versions = {{3, 0}, {1, 0}}) {
        wire::Packet packet;
        REQUIRE(wire::build_guest_log(packet, versions, wire::GuestLogLevel::kInfo, dropped, line.data(),
                                      static_cast<uint32_t>(line.size())));
        script.deliver(0, packet);
    }
};

}  // namespace

TEST_CASE("guest log: lines are forwarded with the count the guest could not send", "[ic][guest-log]") {
    LogFixture f;
    f.send("hello");
    f.send("world", 3);
    REQUIRE(f.lines.size() == 2);
    CHECK(f.lines[0] == std::pair<std::string, uint64_t>{"hello", 0});
    CHECK(f.lines[1] == std::pair<std::string, uint64_t>{"world", 3});
}

TEST_CASE("guest log: lines with other versions, a transaction flag, or before negotiation are dropped and counted", "[ic][guest-log][hostile]") {
    GuestLogService early([](const GuestLogEntry&) { FAIL("forwarded before negotiation"); });
    Script early_script(early);
    early_script.open();
    wire::Packet packet;
    REQUIRE(wire::build_guest_log(packet, {{3, 0}, {1, 0}}, wire::GuestLogLevel::kInfo, 0, "x", 1));
    early_script.deliver(0, packet);
    CHECK(early.counters().unsolicited == 1);

    LogFixture f;
    f.send("v2", 0, {{3, 0}, {2, 0}});
    auto bytes = std::vector<uint8_t>(packet.bytes, packet.bytes + packet.size);
    bytes[kHeaderAt + offsetof(wire::Header, flags)] |= wire::kFlagTransaction;
    f.script.deliver(0, bytes);
    CHECK(f.lines.empty());
    CHECK(f.service.counters().malformed == 2);
}

TEST_CASE("guest log: beyond the burst the root holds lines back and counts them on the next line it forwards", "[ic][guest-log][hostile]") {
    LogFixture f;
    for (uint32_t i = 0; i < GuestLogService::kForwardBurst + 50; ++i) f.send("flood", 1);
    CHECK(f.service.forwarded() == GuestLogService::kForwardBurst);
    CHECK(f.service.held_back() == 50);
    f.script.now += GuestLogService::kForwardInterval;  // one more line may pass
    f.send("after");
    REQUIRE(f.lines.back().first == "after");
    // Every line the guest dropped (1 each) and every line held back is accounted for.
    uint64_t accounted = 0;
    for (const auto& [text, lost] : f.lines) accounted += lost;
    CHECK(accounted == (GuestLogService::kForwardBurst + 50) + f.service.held_back());
}
