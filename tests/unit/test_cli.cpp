#include <catch2/catch.hpp>

#include "cli/cli.h"

using namespace hvkvm::vmm;

TEST_CASE("vmm run CONFIG with overrides", "[cli]") {
    const CommandLine command =
        parse_command_line({"run", "configs/default.json", "--set", "machine.vcpus=4", "--set=kernel.cmdline=x", "-v"});
    CHECK(command.action == CommandLine::Action::kRun);
    CHECK(command.config_file == "configs/default.json");
    CHECK(command.overrides == std::vector<std::string>{"machine.vcpus=4", "kernel.cmdline=x"});
    CHECK(command.verbose);
}

TEST_CASE("help and version", "[cli]") {
    CHECK(parse_command_line({"--help"}).action == CommandLine::Action::kHelp);
    CHECK(parse_command_line({"run", "--help"}).action == CommandLine::Action::kHelp);
    CHECK(parse_command_line({"--version"}).action == CommandLine::Action::kVersion);
}

TEST_CASE("bad command lines are usage errors", "[cli]") {
    CHECK_THROWS_WITH(parse_command_line({}), "missing command");
    CHECK_THROWS_WITH(parse_command_line({"start"}), "unknown command \"start\"");
    CHECK_THROWS_WITH(parse_command_line({"run"}), Catch::StartsWith("run: missing CONFIG"));
    CHECK_THROWS_WITH(parse_command_line({"run", "a.json", "b.json"}), Catch::StartsWith("more than one config file"));
    CHECK_THROWS_WITH(parse_command_line({"run", "a.json", "--set"}), "--set needs a dotted.key=value argument");
    CHECK_THROWS_WITH(parse_command_line({"run", "a.json", "--fast"}), "unknown option \"--fast\"");
}

TEST_CASE("vmm ctl turns its words into one JSON request", "[cli]") {
    auto request_of = [](std::vector<std::string> args) {
        const CommandLine command = parse_command_line(args);
        REQUIRE(command.action == CommandLine::Action::kControl);
        CHECK(command.control_socket == "/run/vm.sock");
        return command.control_request;
    };
    CHECK(request_of({"ctl", "/run/vm.sock", "status"}) == R"({"command":"status"})");
    CHECK(request_of({"ctl", "/run/vm.sock", "channels"}) == R"({"command":"channels"})");
    CHECK(request_of({"ctl", "/run/vm.sock", "kvp", "get", "host name"}) == R"({"command":"kvp-get","key":"host name"})");
    CHECK(request_of({"ctl", "/run/vm.sock", "kvp", "set", "k", "v \"q\""}) ==
          R"({"command":"kvp-set","key":"k","value":"v \"q\""})");
    CHECK(request_of({"ctl", "/run/vm.sock", "kvp", "delete", "k"}) == R"({"command":"kvp-delete","key":"k"})");
    CHECK(request_of({"ctl", "/run/vm.sock", "kvp", "list"}) == R"({"command":"kvp-list"})");
    CHECK(request_of({"ctl", "/run/vm.sock", "timesync"}) == R"({"command":"timesync"})");
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock"}), Catch::Contains("expected SOCKET and a command"));
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock", "status", "now"}), "ctl status: takes no arguments");
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock", "kvp", "get"}), Catch::Contains("expected \"get KEY\""));
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock", "kvp", "set", "k"}), Catch::Contains("expected \"get KEY\""));
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock", "kvp", "list", "all"}), Catch::Contains("\"list\""));
    CHECK_THROWS_WITH(parse_command_line({"ctl", "/run/vm.sock", "reboot"}), Catch::Contains("unknown command \"reboot\""));
}
