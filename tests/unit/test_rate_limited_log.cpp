// Rate limits on guest-triggered log lines (vmm/log/rate_limited_log.h).
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "log/rate_limited_log.h"

using namespace hvkvm::vmm;
using namespace std::chrono_literals;
using Clock = LogRateLimiter::Clock;

TEST_CASE("a burst of lines gets through, exactly, then lines are held back and counted", "[log]") {
    const Clock::time_point start{};
    LogRateLimiter limiter({10, 1s}, start);
    for (int i = 0; i < 10; ++i) CHECK(limiter.admit(start) == 0u);
    CHECK_FALSE(limiter.admit(start));  // the 11th
    CHECK_FALSE(limiter.admit(start + 999ms));
    CHECK(limiter.admit(start + 1s) == 2u);  // one line per interval, telling what was held back
    CHECK_FALSE(limiter.admit(start + 1s));
    CHECK(limiter.take_suppressed() == 1u);
    CHECK(limiter.take_suppressed() == 0u);
}

TEST_CASE("an idle limiter refills to its burst, not beyond", "[log]") {
    const Clock::time_point start{};
    LogRateLimiter limiter({3, 1s}, start);
    for (int i = 0; i < 3; ++i) REQUIRE(limiter.admit(start));
    const auto later = start + 1h;
    for (int i = 0; i < 3; ++i) CHECK(limiter.admit(later) == 0u);
    CHECK_FALSE(limiter.admit(later));
    CHECK_FALSE(limiter.admit(later + 500ms));
    CHECK(limiter.admit(later + 1500ms) == 2u);  // refilled at later + 1 s
}

TEST_CASE("a flood of 20,000 guest-triggered lines prints a handful and one total", "[log]") {
    std::ostringstream captured;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    spdlog::set_pattern("%l: %v");
    {
        RateLimitedLog log(spdlog::level::warn, "refused requests");
        for (int i = 0; i < 20000; ++i) log.log("request {} refused", i);
        log.report_suppressed();
    }
    spdlog::set_default_logger(previous);
    const std::string text = captured.str();
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    CHECK(lines <= 13);  // the burst, a line per elapsed second at most, the total
    CHECK(text.find("request 0 refused") != std::string::npos);
    CHECK(text.find("request 9 refused") != std::string::npos);
    CHECK(text.find("more refused requests were not logged") != std::string::npos);
    CHECK(text.size() < 2000);
}

TEST_CASE("lines below the log level cost nothing and are not counted", "[log]") {
    std::ostringstream captured;
    auto previous = spdlog::default_logger();
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
    spdlog::set_level(spdlog::level::info);
    {
        RateLimitedLog log(spdlog::level::debug, "debug lines");
        for (int i = 0; i < 100; ++i) log.log("debug {}", i);
        log.report_suppressed();
    }
    spdlog::set_default_logger(previous);
    CHECK(captured.str().empty());
}
