// How the VMM prints the guest's log lines (vmm/log/guest_log_printer.h): printable ASCII only,
// bounded length, a rate limit, and every line not shown counted.
#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <sstream>

#include "log/guest_log_printer.h"

using hvkvm::vmm::GuestLogPrinter;
using namespace std::chrono_literals;

namespace {

struct Captured {
    std::ostringstream text;
    std::shared_ptr<spdlog::logger> logger;
    Captured() {
        logger = std::make_shared<spdlog::logger>("captured", std::make_shared<spdlog::sinks::ostream_sink_st>(text));
        logger->set_pattern("%v");
    }
};

}  // namespace

TEST_CASE("guest log printer: control and non-ASCII bytes become '?'; lines are cut at 200 bytes", "[guest-log]") {
    CHECK(GuestLogPrinter::sanitize("ok \x1b[31mred\x07 \xc3\xa9") == "ok ?[31mred? ??");
    const std::string fits(GuestLogPrinter::kMaxPrintedBytes, 'x');
    CHECK(GuestLogPrinter::sanitize(fits) == fits);
    CHECK(GuestLogPrinter::sanitize(fits + "yz") == fits + "... (2 more bytes)");
}

TEST_CASE("guest log printer: 'guest-log: ' and the level; lines beyond the burst are held back and counted", "[guest-log]") {
    Captured out;
    GuestLogPrinter printer({3, 1h}, out.logger);
    printer.print(0, 0, "one");
    printer.print(1, 2, "two");
    printer.print(2, 0, "three");
    printer.print(0, 0, "four");
    printer.print(0, 5, "five");
    CHECK(printer.printed() == 3);
    printer.report_suppressed();
    CHECK(out.text.str() ==
          "guest-log: one\n"
          "guest-log: warning: two (2 earlier lines not shown)\n"
          "guest-log: error: three\n"
          "guest-log: (7 more lines not shown)\n");
}
