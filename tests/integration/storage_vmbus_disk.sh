#!/usr/bin/env bash
# A VM with vmbus disks: the VMM opens and locks the images, hands them to the root partition
# over the link, and storvsp serves them from inside the sandbox to the guest's storvsc (`vmm ctl
# storage` shows them, initialized, with a sub-channel on the second vCPU); a second VM on the same
# image is refused with status 2 naming the key.
#   storage_vmbus_disk.sh VMM KERNEL SCRATCH_DIR   (exit 77: no usable /dev/kvm)
set -u
vmm=$1 kernel=$(realpath "$2") scratch=$3
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
dir=$(mktemp -d "$(realpath "$scratch")/storage-XXXXXX")
log=$(mktemp)
trap 'kill -KILL "$pid" 2>/dev/null; rm -rf "$dir" "$log"' EXIT
truncate -s 8M "$dir/data.img"
truncate -s 1M "$dir/seed.img"
cat >"$dir/vm.json" <<JSON
{
  "machine": {"vcpus": 2, "memory_mib": 128},
  "kernel": {"path": "$kernel", "cmdline": "hang"},
  "control": {"socket": "$dir/control.sock"},
  "disks": [
    {"id": "data", "path": "data.img", "bus": "vmbus", "cache": "none", "size_mib": 8},
    {"id": "seed", "path": "seed.img", "bus": "vmbus", "read_only": true, "cache": "writeback"}
  ],
  "debug": {"disk_fault": {"disk": "data", "operation": "write", "nth": 2, "error": "eio"}}
}
JSON
"$vmm" run "$dir/vm.json" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done

failed=0
expect() {  # expect NAME REGEX TEXT
    grep -Eq -- "$2" <<<"$3" || { echo "FAIL ($1): no /$2/"; failed=1; }
}
# The guest sets storvsp up while it boots: ask until its sub-channel is open (10 s at most).
for _ in $(seq 100); do
    answer=$("$vmm" ctl "$dir/control.sock" storage 2>&1)
    grep -q '"target_vp": 1' <<<"$answer" && break
    sleep 0.1
done
echo "\$ vmm ctl SOCKET storage"
echo "$answer"
expect storage-ok '"ok": true' "$answer"
expect lun0 '"id": "data"' "$answer"
expect lun1 '"id": "seed"' "$answer"
expect direct '"direct": true' "$answer"
expect read-only '"read_only": true' "$answer"
expect size '"size_bytes": 8388608' "$answer"
# The guest's storvsc has initialized the controller (protocol 6.2) and opened its sub-channel on VP 1.
expect initialized '"state": "ready"' "$answer"
expect version '"version": 1538' "$answer"
expect sub-channel '"sub_channels": 1' "$answer"
expect steered '"target_vp": 1' "$answer"

second=$("$vmm" run "$dir/vm.json" --set "control.socket=$dir/other.sock" 2>&1)
status=$?
echo "second VM on the same images: status $status: $second"
[ "$status" = 2 ] || { echo "FAIL: a second VM on a locked image exited $status, expected 2"; failed=1; }
expect locked 'disks\[0\]\.path: .*in use' "$second"

kill -TERM "$pid"
wait "$pid"
status=$?
cat "$log"
[ "$status" = 143 ] || { echo "FAIL: vmm exited $status, expected 143"; failed=1; }
expect sandboxed 'sandboxed \(seccomp mode 2' "$(cat "$log")"
[ "$failed" = 0 ] && echo PASS
exit "$failed"
