// Runs one `vmm` process the way a hostile-guest case needs: its stdout read, left unread or with
// the reader gone; its stderr always drained (so that only the VMM's own behaviour can block it),
// counted and kept up to a bound; a stop signal sent at a chosen moment; and its end observed with
// wait4, which also gives its peak RSS.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace hvkvm::hostile {

enum class StdoutMode { kRead, kUnread, kClosed };

struct SignalPlan {
    int signal = 0;                                     // 0: none
    std::chrono::milliseconds after_start{0};           // when no marker is given
    std::string marker;                                 // send once this text appears on stdout or stderr
    std::chrono::milliseconds after_marker{0};
};

struct RunLimits {
    std::chrono::seconds overall{60};                   // the run is killed (and fails) after this
    std::chrono::seconds after_signal{3};               // the VMM must have exited this long after the signal
    size_t kept_output_bytes = 1 << 20;                 // per stream, for the checks
};

struct CapturedStream {
    std::string text;       // the first kept_output_bytes bytes
    size_t total_bytes = 0;
    std::string tail;       // the last bytes read, wherever the stream is: for spotting a marker
};

struct RunResult {
    int wait_status = 0;                                // as from wait4
    long peak_rss_kib = 0;                              // ru_maxrss
    CapturedStream out, err;
    std::optional<std::chrono::milliseconds> signal_sent_at;
    std::optional<std::chrono::milliseconds> exit_after_signal;
    bool killed_for_timeout = false;                    // overall limit or signal deadline missed
    std::chrono::milliseconds duration{0};
};

RunResult run_vmm(const std::vector<std::string>& argv, StdoutMode stdout_mode, const SignalPlan& signal,
                  const RunLimits& limits);

}  // namespace hvkvm::hostile
