#!/usr/bin/env bash
# Drives a running VM through its control socket as a script would: `vmm ctl` answers status,
# channels, refuses bad requests with an error (and the VM carries on), and the socket goes away
# with the VM.   control_socket.sh VMM CONFIG KERNEL SCRATCH_DIR   (exit 77: no usable /dev/kvm)
set -u
vmm=$1 config=$2 kernel=$3 scratch=$4
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
socket="$scratch/control-$$.sock"
log=$(mktemp)
trap 'rm -f "$log"; kill -KILL "$pid" 2>/dev/null' EXIT
"$vmm" run "$config" --set "kernel.path=$kernel" --set kernel.cmdline=hang --set "control.socket=$socket" >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done

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
check channels 0 '"name": "echo"' -- channels
check unknown-kvp 1 '"ok": false' -- kvp get some-key
check no-shutdown-service 1 'no shutdown service' -- shutdown
check usage 2 'unknown command "reboot"' -- reboot
# A malformed request line from a raw client gets an error answer; the VM carries on.
answer=$(printf 'not json\n' | timeout 5 socat - "UNIX-CONNECT:$socket" 2>/dev/null || python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect('$socket'); s.sendall(b'not json\n'); print(s.recv(4096).decode())")
echo "raw 'not json' -> $answer"
grep -q '"ok":false' <<<"$answer" || { echo "FAIL: a malformed line was not answered with an error"; failed=1; }
check still-running 0 '"state": "running"' -- status

kill -TERM "$pid"
wait "$pid"
status=$?
[ "$status" = 143 ] || { echo "FAIL: vmm exited $status, expected 143"; failed=1; }
[ -e "$socket" ] && { echo "FAIL: the control socket outlived the VM"; failed=1; }
check gone 1 'cannot connect' -- status
cat "$log"
[ "$failed" = 0 ] && echo PASS
exit "$failed"
