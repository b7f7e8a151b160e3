#!/usr/bin/env bash
# Drives a running VM through its control socket as a script would, with the guest serving its
# integration services (kernel.cmdline=serve): `vmm ctl` shows status, channels and the heartbeat,
# sets and reads KVP pairs in the guest (which prints what the host set), lists the guest's
# pools, compares the guest's wall clock with the host's, refuses bad requests with an error (the
# VM carries on), and `shutdown` stops the guest in order (status 0); the socket goes away with
# the VM.   control_socket.sh VMM CONFIG KERNEL SCRATCH_DIR   (exit 77: no usable /dev/kvm)
set -u
vmm=$1 config=$2 kernel=$3 scratch=$4
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
socket="$scratch/control-$$.sock"
log=$(mktemp)
trap 'rm -f "$log"; kill -KILL "$pid" 2>/dev/null' EXIT
"$vmm" run "$config" --set "kernel.path=$kernel" --set kernel.cmdline=serve --set "control.socket=$socket" \
    --set kvp.Env=ci >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
# The services are up once the guest says so (the first heartbeat is answered before that line).
for _ in $(seq 100); do grep -q "^serve: running" "$log" && break; sleep 0.1; done

failed=0
check() {  # check NAME EXPECTED_STATUS REGEX -- CTL_ARGS...
    local name=$1 status=$2 pattern=$3
    shift 4
    local output actual
    output=$("$vmm" ctl "$socket" "$@" 2>&1)
    actual=$?
    echo "\$ vmm ctl SOCKET $*"
    echo "$output"
    if [ "$actual" != "$status" ]; then echo "FAIL ($name): exit status $actual, expected $status"; failed=1; fi
    if ! grep -Eq -- "$pattern" <<<"$output"; then echo "FAIL ($name): output lacks /$pattern/"; failed=1; fi
}
check status 0 '"state": "running"' -- status
check status-vcpus 0 '"vcpus_started": 1' -- status
check status-heartbeat 0 '"state": "beating"' -- status
check channels 0 '"name": "echo"' -- channels
check channels-ic 0 '"name": "guest-log"' -- channels
check heartbeat 0 '"application_state": "healthy"' -- heartbeat
check heartbeat-beats 0 '"beats": [1-9]' -- heartbeat
check kvp-preset 0 '"value": "ci"' -- kvp get Env
check kvp-set 0 '"pool": "external"' -- kvp set Color blue
check kvp-get-set 0 '"value": "blue"' -- kvp get Color
check kvp-get-auto 0 '"value": "hvkvm guest kernel"' -- kvp get OSName
check kvp-get-guest 0 '"pool": "guest"' -- kvp get KernelCommandLine
check kvp-missing 1 'the guest has no value for \\"NoSuchKey\\"' -- kvp get NoSuchKey
check kvp-key-too-long 1 'longer than 255 UTF-16 units' -- kvp set "$(printf 'k%.0s' $(seq 256))" v
check kvp-key-fits 0 '"ok": true' -- kvp set "$(printf 'k%.0s' $(seq 255))" v
check kvp-delete 0 '"ok": true' -- kvp delete Color
check kvp-deleted 1 'no value for \\"Color\\"' -- kvp get Color
check kvp-list 0 '"OSName": "hvkvm guest kernel"' -- kvp list
check timesync 0 '"syncs": [1-9]' -- timesync
check unknown-kvp-verb 2 'expected "get KEY"' -- kvp put k v
check usage 2 'unknown command "reboot"' -- reboot

# The guest's wall clock against the host's: read between two host readings, it must fall
# between them, widened by 5 ms (the guest's own error is microseconds: docs/vmbus.md).
before=$(date +%s%N)
answer=$("$vmm" ctl "$socket" kvp get WallClockUnixNs 2>&1)
after=$(date +%s%N)
guest=$(sed -n 's/.*"value": "\([0-9]*\)".*/\1/p' <<<"$answer")
echo "wall clock: host before $before, guest $guest, host after $after"
if [ -z "$guest" ] || [ "$guest" -lt $((before - 5000000)) ] || [ "$guest" -gt $((after + 5000000)) ]; then
    echo "FAIL: the guest's wall clock is not within 5 ms of the host's"; failed=1
fi

# A malformed request line from a raw client gets an error answer; the VM carries on.
answer=$(printf 'not json\n' | timeout 5 socat - "UNIX-CONNECT:$socket" 2>/dev/null || python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect('$socket'); s.sendall(b'not json\n'); print(s.recv(4096).decode())")
echo "raw 'not json' -> $answer"
grep -q '"ok":false' <<<"$answer" || { echo "FAIL: a malformed line was not answered with an error"; failed=1; }
check still-running 0 '"state": "running"' -- status

check shutdown 0 '"ok": true' -- shutdown
wait "$pid"
status=$?
[ "$status" = 0 ] || { echo "FAIL: vmm exited $status after an accepted shutdown, expected 0"; failed=1; }
grep -q '^kvp: the host set "Color" = "blue"$' "$log" || { echo "FAIL: the guest did not report the pair the host set"; failed=1; }
grep -q '^guest shutdown: requested by the host' "$log" || { echo "FAIL: no orderly guest shutdown"; failed=1; }
[ -e "$socket" ] && { echo "FAIL: the control socket outlived the VM"; failed=1; }
check gone 1 'cannot connect' -- status
cat "$log"
[ "$failed" = 0 ] && echo PASS
exit "$failed"
