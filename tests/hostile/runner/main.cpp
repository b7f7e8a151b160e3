// hostile-runner: boots the hostile guest with one case and checks that the VMM survived it.
//
//   hostile-runner --vmm PATH --kernel ELF --config JSON --case NAME [--vcpus N] [--memory-mib N]
//       [--cmdline "k=v ..."] [--verbose] [--stdout read|unread|closed]
//       [--signal TERM|INT --at-ms N | --on-output TEXT [--delay-ms N]]
//       [--status N,N...] [--expect REGEX]... [--reject REGEX]...
//       [--stderr-limit BYTES] [--rss-margin-mib N] [--timeout-s N]
//
// Every run is checked for: no death by a signal; an exit status from README's table (0, 1, 2, 3,
// 4, 128+N) and one the case allows; a last stderr line that states the outcome on one printable
// line (naming the same status); the stop signal, if sent, honoured within 3 s; stderr within its
// bound; peak RSS within guest RAM plus a fixed margin; the boot timeline inside the run. Exit 0:
// all checks passed; 1: one failed; 77: skipped (no usable /dev/kvm).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vmm_process.h"

namespace hvkvm::hostile {
namespace {

struct Options {
    std::string vmm, kernel, config, case_name, cmdline_extra;
    unsigned vcpus = 1;
    unsigned memory_mib = 32;
    bool verbose = false;
    StdoutMode stdout_mode = StdoutMode::kRead;
    SignalPlan signal;
    std::set<int> allowed_statuses{0};
    std::vector<std::string> expects, rejects;
    size_t stderr_limit = 64 * 1024;
    unsigned rss_margin_mib = 64;
    unsigned timeout_s = 60;
};

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "hostile-runner: " << problem << "\n";
    std::exit(2);
}

std::set<int> parse_statuses(const std::string& list) {
    std::set<int> statuses;
    std::stringstream stream(list);
    for (std::string item; std::getline(stream, item, ',');) statuses.insert(std::stoi(item));
    return statuses;
}

int parse_signal(const std::string& name) {
    if (name == "TERM") return SIGTERM;
    if (name == "INT") return SIGINT;
    usage("unknown signal " + name);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--vmm") options.vmm = value();
        else if (arg == "--kernel") options.kernel = value();
        else if (arg == "--config") options.config = value();
        else if (arg == "--case") options.case_name = value();
        else if (arg == "--cmdline") options.cmdline_extra = value();
        else if (arg == "--vcpus") options.vcpus = static_cast<unsigned>(std::stoul(value()));
        else if (arg == "--memory-mib") options.memory_mib = static_cast<unsigned>(std::stoul(value()));
        else if (arg == "--verbose") options.verbose = true;
        else if (arg == "--stdout") {
            const std::string mode = value();
            options.stdout_mode = mode == "read" ? StdoutMode::kRead : mode == "unread" ? StdoutMode::kUnread
                                : mode == "closed" ? StdoutMode::kClosed : (usage("bad --stdout " + mode), StdoutMode::kRead);
        } else if (arg == "--signal") options.signal.signal = parse_signal(value());
        else if (arg == "--at-ms") options.signal.after_start = std::chrono::milliseconds(std::stoul(value()));
        else if (arg == "--on-output") options.signal.marker = value();
        else if (arg == "--delay-ms") options.signal.after_marker = std::chrono::milliseconds(std::stoul(value()));
        else if (arg == "--status") options.allowed_statuses = parse_statuses(value());
        else if (arg == "--expect") options.expects.push_back(value());
        else if (arg == "--reject") options.rejects.push_back(value());
        else if (arg == "--stderr-limit") options.stderr_limit = std::stoul(value());
        else if (arg == "--rss-margin-mib") options.rss_margin_mib = static_cast<unsigned>(std::stoul(value()));
        else if (arg == "--timeout-s") options.timeout_s = static_cast<unsigned>(std::stoul(value()));
        else usage("unknown option " + arg);
    }
    if (options.vmm.empty() || options.kernel.empty() || options.config.empty() || options.case_name.empty())
        usage("--vmm, --kernel, --config and --case are required");
    return options;
}

std::vector<std::string> vmm_arguments(const Options& options) {
    std::string cmdline = "case=" + options.case_name;
    if (!options.cmdline_extra.empty()) cmdline += " " + options.cmdline_extra;
    std::vector<std::string> argv = {options.vmm, "run", options.config,
                                     "--set", "kernel.path=" + options.kernel,
                                     "--set", "machine.vcpus=" + std::to_string(options.vcpus),
                                     "--set", "machine.memory_mib=" + std::to_string(options.memory_mib),
                                     "--set", "kernel.cmdline=" + cmdline};
    if (options.verbose) argv.push_back("--verbose");
    return argv;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream stream(text);
    for (std::string line; std::getline(stream, line);) lines.push_back(line);
    return lines;
}

// The lines of what was kept of a stream; a line cut off where the keeping stopped is left out.
std::vector<std::string> kept_lines(const CapturedStream& stream) {
    std::vector<std::string> lines = lines_of(stream.text);
    const bool cut = stream.total_bytes > stream.text.size() && !stream.text.empty() && stream.text.back() != '\n';
    if (cut) lines.pop_back();
    return lines;
}

bool printable(const std::string& line) {
    for (unsigned char c : line)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

bool documented_status(int status) { return (status >= 0 && status <= 4) || (status > 128 && status < 128 + 65); }

class Verdict {
public:
    void check(bool ok, const std::string& what) {
        std::cout << (ok ? "  ok    " : "  FAIL  ") << what << "\n";
        failed_ |= !ok;
    }
    bool failed() const { return failed_; }

private:
    bool failed_ = false;
};

// The last stderr line is the VMM's summary; when it names an exit status, it is the real one.
void check_summary_line(Verdict& verdict, const std::vector<std::string>& err_lines, int status) {
    const std::string last = err_lines.empty() ? "" : err_lines.back();
    verdict.check(last.rfind("vmm: ", 0) == 0 && printable(last) && last.size() <= 400,
                  "the last stderr line is a one-line printable reason: \"" + last.substr(0, 200) + "\"");
    static const std::regex named_status(R"(\(exit status ([0-9]+)\)$)");
    std::smatch match;
    if (std::regex_search(last, match, named_status))
        verdict.check(std::stoi(match[1]) == status, "the reason names the real exit status");
}

// Every timed entry of the boot timeline lies between VMM start and "guest stop".
void check_timeline(Verdict& verdict, const std::vector<std::string>& err_lines) {
    static const std::regex entry(R"(^ +(-?[0-9]+\.[0-9]+)  (.*?) +\[(.*)\]$)");
    double guest_stop = -1, latest = 0, earliest = 0;
    std::string latest_label;
    bool in_timeline = false;
    for (const std::string& line : err_lines) {
        if (line.rfind("--- boot timeline", 0) == 0) in_timeline = true;
        else if (line.rfind("---", 0) == 0 || line.rfind("guest main", 0) == 0) in_timeline = false;
        std::smatch match;
        if (!in_timeline || !std::regex_match(line, match, entry)) continue;
        const double ms = std::stod(match[1]);
        if (match[2] == "guest stop") guest_stop = ms;
        earliest = std::min(earliest, ms);
        if (ms > latest) latest = ms, latest_label = match[2];
    }
    if (guest_stop < 0) return;  // stopped before the timeline mattered
    verdict.check(earliest >= 0 && latest <= guest_stop + 0.001,
                  "boot timeline entries lie between VMM start and guest stop (latest: " + latest_label + ")");
}

void check_patterns(Verdict& verdict, const Options& options, const std::vector<std::string>& lines) {
    for (const std::string& pattern : options.expects) {
        const std::regex re(pattern);
        bool found = false;
        for (const std::string& line : lines) found |= std::regex_search(line, re);
        verdict.check(found, "output has /" + pattern + "/");
    }
    for (const std::string& pattern : options.rejects) {
        const std::regex re(pattern);
        bool found = false;
        for (const std::string& line : lines) found |= std::regex_search(line, re);
        verdict.check(!found, "output lacks /" + pattern + "/");
    }
}

void show_output(const RunResult& result) {
    const auto err_lines = lines_of(result.err.text);
    const size_t shown = std::min<size_t>(err_lines.size(), 120);
    std::cout << "--- stderr (" << result.err.total_bytes << " bytes, first " << shown << " lines)\n";
    for (size_t i = 0; i < shown; ++i) std::cout << err_lines[i] << "\n";
    if (!result.out.text.empty()) {
        std::cout << "--- stdout (" << result.out.total_bytes << " bytes, first 2000 shown)\n";
        for (char c : result.out.text.substr(0, 2000)) std::cout << ((c >= 0x20 && c < 0x7f) || c == '\n' ? c : '?');
        std::cout << "\n";
    }
}

int run(const Options& options) {
    if (::access("/dev/kvm", R_OK | W_OK) != 0) {
        std::cout << "SKIPPED: the hostile suite boots VMs and needs read/write access to /dev/kvm\n";
        return 77;
    }
    const std::vector<std::string> argv = vmm_arguments(options);
    std::cout << "$";
    for (const std::string& arg : argv) std::cout << " " << arg;
    std::cout << "\n";
    RunLimits limits;
    limits.overall = std::chrono::seconds(options.timeout_s);
    const RunResult result = run_vmm(argv, options.stdout_mode, options.signal, limits);
    show_output(result);

    std::cout << "--- checks (" << result.duration.count() << " ms)\n";
    Verdict verdict;
    verdict.check(!result.killed_for_timeout, result.signal_sent_at ? "honoured the stop signal within 3 s"
                                                                    : "finished within " + std::to_string(options.timeout_s) + " s");
    if (WIFSIGNALED(result.wait_status)) {
        verdict.check(false, std::string("not killed by a signal (killed by SIG") + ::sigabbrev_np(WTERMSIG(result.wait_status)) + ")");
        return 1;
    }
    const int status = WEXITSTATUS(result.wait_status);
    verdict.check(documented_status(status), "exit status " + std::to_string(status) + " is documented");
    verdict.check(options.allowed_statuses.count(status) == 1, "exit status " + std::to_string(status) + " is one this case allows");
    if (result.exit_after_signal)
        verdict.check(result.exit_after_signal->count() <= 3000,
                      "exited " + std::to_string(result.exit_after_signal->count()) + " ms after the signal");
    verdict.check(result.err.total_bytes <= options.stderr_limit,
                  "stderr " + std::to_string(result.err.total_bytes) + " bytes <= " + std::to_string(options.stderr_limit));
    const long rss_limit_kib = (long{options.memory_mib} + options.rss_margin_mib) * 1024;
    verdict.check(result.peak_rss_kib <= rss_limit_kib, "peak RSS " + std::to_string(result.peak_rss_kib / 1024) +
                                                            " MiB <= guest RAM + " + std::to_string(options.rss_margin_mib) + " MiB");
    const auto err_lines = kept_lines(result.err);
    check_summary_line(verdict, err_lines, status);
    check_timeline(verdict, err_lines);
    std::vector<std::string> all_lines = err_lines;
    for (std::string& line : kept_lines(result.out)) all_lines.push_back(std::move(line));
    check_patterns(verdict, options, all_lines);
    std::cout << (verdict.failed() ? "FAILED\n" : "PASSED\n");
    return verdict.failed() ? 1 : 0;
}

}  // namespace
}  // namespace hvkvm::hostile

int main(int argc, char** argv) {
    try {
        return hvkvm::hostile::run(hvkvm::hostile::parse(argc, argv));
    } catch (const std::exception& error) {
        std::cerr << "hostile-runner: " << error.what() << "\n";
        return 1;
    }
}
