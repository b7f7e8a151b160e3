#include "cli/cli.h"

#include <nlohmann/json.hpp>

namespace hvkvm::vmm {

std::string usage_text() {
    return "usage: vmm run CONFIG [--set dotted.key=value ...] [--verbose]\n"
           "       vmm ctl SOCKET status|shutdown|heartbeat|timesync|channels|storage\n"
           "       vmm ctl SOCKET kvp get KEY|kvp set KEY VALUE|kvp delete KEY|kvp list\n"
           "       vmm --help | --version\n"
           "\n"
           "Boots the guest kernel named by the JSON config CONFIG on /dev/kvm.\n"
           "  --set KEY=VALUE  override one config key, e.g. --set machine.vcpus=4\n"
           "                   (VALUE is JSON if it parses as JSON, else a string)\n"
           "  --verbose        debug logging from the VMM\n"
           "Exit status: 0 guest success, 1 VMM/host error, 2 invalid config or arguments,\n"
           "             3 guest crash, 4 guest reported failure, 128+N stopped by signal N.\n"
           "ctl talks to a running VM's control socket (config control.socket) and prints its\n"
           "JSON answer; exit status 0 if it succeeded, 1 if not or unreachable, 2 for bad usage.\n"
           "Config keys: docs/config.md\n";
}

namespace {

// `ctl SOCKET WORDS...` -> the JSON request for the words.
CommandLine parse_control(const std::vector<std::string>& args) {
    CommandLine command;
    command.action = CommandLine::Action::kControl;
    if (args.size() < 3) throw UsageError("ctl: expected SOCKET and a command (status, shutdown, heartbeat, timesync, channels, storage, kvp)");
    command.control_socket = args[1];
    const std::string& verb = args[2];
    const size_t extra = args.size() - 3;
    nlohmann::json request;
    if (verb == "status" || verb == "shutdown" || verb == "heartbeat" || verb == "timesync" || verb == "channels" ||
        verb == "storage") {
        if (extra != 0) throw UsageError("ctl " + verb + ": takes no arguments");
        request = {{"command", verb}};
    } else if (verb == "kvp" && extra == 2 && (args[3] == "get" || args[3] == "delete")) {
        request = {{"command", "kvp-" + args[3]}, {"key", args[4]}};
    } else if (verb == "kvp" && extra == 3 && args[3] == "set") {
        request = {{"command", "kvp-set"}, {"key", args[4]}, {"value", args[5]}};
    } else if (verb == "kvp" && extra == 1 && args[3] == "list") {
        request = {{"command", "kvp-list"}};
    } else if (verb == "kvp") {
        throw UsageError("ctl kvp: expected \"get KEY\", \"set KEY VALUE\", \"delete KEY\" or \"list\"");
    } else {
        throw UsageError("ctl: unknown command \"" + verb + "\" (status, shutdown, heartbeat, timesync, channels, storage, kvp)");
    }
    command.control_request = request.dump();
    return command;
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine command;
    if (args.empty()) throw UsageError("missing command");
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") return command;
    if (args[0] == "--version") {
        command.action = CommandLine::Action::kVersion;
        return command;
    }
    if (args[0] == "ctl") return parse_control(args);
    if (args[0] != "run") throw UsageError("unknown command \"" + args[0] + "\"");
    command.action = CommandLine::Action::kRun;

    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--set") {
            if (i + 1 == args.size()) throw UsageError("--set needs a dotted.key=value argument");
            command.overrides.push_back(args[++i]);
        } else if (arg.rfind("--set=", 0) == 0) {
            command.overrides.push_back(arg.substr(6));
        } else if (arg == "--verbose" || arg == "-v") {
            command.verbose = true;
        } else if (arg == "--help" || arg == "-h") {
            command.action = CommandLine::Action::kHelp;
            return command;
        } else if (!arg.empty() && arg[0] == '-') {
            throw UsageError("unknown option \"" + arg + "\"");
        } else if (command.config_file.empty()) {
            command.config_file = arg;
        } else {
            throw UsageError("more than one config file given (\"" + command.config_file.string() + "\" and \"" +
                             arg + "\")");
        }
    }
    if (command.config_file.empty()) throw UsageError("run: missing CONFIG (a JSON file, e.g. configs/default.json)");
    return command;
}

}  // namespace hvkvm::vmm
