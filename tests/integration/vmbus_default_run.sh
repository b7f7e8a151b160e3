#!/usr/bin/env bash
# The default config's story (README's first command): `vmm run configs/default.json` boots a
# guest that serves its integration services until it is stopped. The run shows the VMBus
# channels the guest opened and its first heartbeat; while it idles the root partition uses
# (almost) no CPU — its VSPs sleep on their eventfds, the echo VSP's poll window ends; a stop
# signal (SIGTERM, or SIGINT as Ctrl-C sends it) shuts the guest down in order and the run ends
# with the guest's status, 0.
#
#   vmbus_default_run.sh VMM CONFIG KERNEL SIGNAL   (exit 77: no usable /dev/kvm)
set -u
vmm=$1 config=$2 kernel=$3 signal=$4
idle_seconds=2
idle_cpu_limit_ms=60  # 3% of the idle time: heartbeats and time samples cost well under 1 ms/s
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"; kill -KILL "$pid" 2>/dev/null' EXIT
"$vmm" run "$config" --set "kernel.path=$kernel" >"$log" 2>&1 &
pid=$!

failed=0
fail() { echo "FAIL: $*"; failed=1; }
wait_for() {  # wait_for REGEX SECONDS: true once the output has a matching line
    for _ in $(seq $(($2 * 10))); do grep -Eq -- "$1" "$log" && return 0; sleep 0.1; done
    return 1
}
cpu_ms() {  # cpu_ms PID: user + system CPU time so far, in ms (fields 14 and 15 of stat, after the name)
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
}

if ! wait_for "the guest is up: heartbeat answered" 60; then
    fail "no first heartbeat within 60 s"
else
    root=$(pgrep -P "$pid" -x hvkvm-root)
    if [ -z "$root" ]; then
        fail "vmm has no hvkvm-root child"
    else
        before=$(cpu_ms "$root")
        sleep "$idle_seconds"
        used=$(($(cpu_ms "$root") - before))
        echo "root partition (pid $root): $used ms of CPU in $idle_seconds s idle (limit $idle_cpu_limit_ms ms)"
        [ "$used" -le "$idle_cpu_limit_ms" ] || fail "the idle root partition used $used ms of CPU in $idle_seconds s"
    fi
fi
kill -s "$signal" "$pid"
wait "$pid"
status=$?

echo "\$ vmm run $config --set kernel.path=$kernel   (SIG$signal once the guest was up)"
cat "$log"
echo "--- exit status $status (expected 0)"
[ "$status" = 0 ] || fail "exit status $status, expected 0"
expect() { grep -Eq -- "$1" "$log" || fail "output lacks /$1/"; }
channels='echo \(relid 1, open on VP 0\), heartbeat \(relid 2, open on VP 0\), shutdown \(relid 3, open on VP 0\), timesync \(relid 4, open on VP 0\), kvp \(relid 5, open on VP 0\), guest-log \(relid 6, open on VP 0\)'
expect "the guest is up: heartbeat answered \(sequence [0-9]+\); VMBus channels: $channels$"
expect "^serve: running until the host asks for a shutdown"
expect "SIG$signal received: asked the guest to shut down"
expect "^guest shutdown: requested by the host \(reason 0x80000000, deadline [0-9]+ s\); stopping$"
expect "guest reported success"
expect "channels: echo \(relid 1, closed\), .*guest-log \(relid 6, closed\); heartbeat: [1-9][0-9]* answers"
# In order: asked, then the guest's own shutdown, then the VM's end (the guest closed its channels).
order=$(grep -nE "SIG$signal received|^guest shutdown: requested|guest reported success" "$log" | cut -d: -f1 | tr '\n' ' ')
sorted=$(tr ' ' '\n' <<<"$order" | grep . | sort -n | tr '\n' ' ')
if [ "$order" != "$sorted" ] || [ "$(wc -w <<<"$order")" != 3 ]; then
    fail "the shutdown lines are missing or out of order (lines $order)"
fi
[ "$failed" = 0 ] && echo "PASS"
exit "$failed"
