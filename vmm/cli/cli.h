// Command-line parsing for `vmm`. Pure (no I/O) so that it is unit-tested.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace hvkvm::vmm {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct CommandLine {
    enum class Action { kRun, kControl, kHelp, kVersion };
    Action action = Action::kHelp;
    // kControl: `vmm ctl SOCKET COMMAND [ARGS...]`, as the JSON request sent.
    std::filesystem::path control_socket;
    std::string control_request;
    std::filesystem::path config_file;
    std::vector<std::string> overrides;  // "dotted.key=value", in order
    bool verbose = false;
};

// `args` excludes the program name. Throws UsageError for anything it does not understand.
CommandLine parse_command_line(const std::vector<std::string>& args);

std::string usage_text();

}  // namespace hvkvm::vmm
