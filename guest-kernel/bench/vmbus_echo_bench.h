// In-guest VMBus benchmark (kernel cmdline bench=vmbus_echo): the echo channel between the guest's
// echo VSC and the root partition's echo VSP.
//
//   busy-64, busy-4k   messages/s with many requests in flight (64-byte and 4 KiB payloads)
//   qd1-busy           round-trip latency p50/p99 at queue depth 1, back to back, the reader
//                      polling while its request is in flight (no interrupts)
//   qd1-idle           the same with a pause between requests and no polling: each answer finds
//                      the guest asleep and must interrupt it
//
// Per message it also prints what the guest itself counted: signals to the host (HvSignalEvent,
// each an exit unless the host had masked its ring) and channel interrupts taken. Rounds of every
// case are interleaved and the median round is reported with the range. `vmbus_echo_only=CASE`
// runs one case only, so that a script can attribute the VMM's KVM exit counters to it.
#pragma once

#include "lib/string_view.h"

namespace hvkvm::guest::bench {

// `only`: empty for every case, else one case name.
bool run_vmbus_echo_benchmark(StringView only);

}  // namespace hvkvm::guest::bench
