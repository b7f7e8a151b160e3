#!/usr/bin/env bash
# The txfs demo, end to end: `txfs mkfs` prepares an image; a first boot (configs/txfs-demo.json:
# txfs_demo) installs update version 1 in one transaction; a second boot mounts it again, runs
# online fsck and verifies the update is whole; the host tools then see the same files and keys.
# Then both checkers must catch a mix of versions: one component value set to another version on
# the host, the kill test's host check (vm_kill.sh --check-image) and the guest's txfs_verify fail.
#   vm_demo.sh VMM TXFS CONFIG KERNEL SCRATCH   (77: no /dev/kvm)
set -u
vmm=$1 txfs=$2 config=$3 kernel=$4 scratch=$5
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
image="$scratch/txfs-demo-$$.img"
log=$(mktemp)
trap 'rm -f "$log" "$image"' EXIT
failed=0
expect() {  # expect WHAT REGEX: the last output must match
    grep -Eq -- "$2" "$log" || { echo "FAIL ($1): output lacks /$2/"; failed=1; }
}
boot() {  # boot CMDLINE [STATUS]: runs the VM to its end, prints its txfs lines, wants STATUS (0)
    timeout --signal=KILL 60 "$vmm" run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$image" \
        --set "kernel.cmdline=$1" >"$log" 2>&1
    local status=$? wanted=${2:-0}
    echo "\$ vmm run ... kernel.cmdline=$1  (exit status $status)"
    grep -E "^txfs|panic" "$log"
    [ "$status" = "$wanted" ] || { echo "FAIL: the boot exited $status, expected $wanted"; failed=1; }
}
"$txfs" mkfs "$image" --size 16M || exit 1
boot "txfs=ata0 txfs_demo txfs_ls"
expect "first boot" "^txfs: mounted ata0 .* 0 file\(s\)"
expect "first boot" "^txfs update: version 1: \[6/6\] /Windows/System32/hvtime.dll"
expect "first boot" "^txfs update: version 1 committed"
boot "txfs=ata0 txfs_fsck txfs_verify txfs_ls"
expect "second boot" "^txfs: mounted ata0 .* 6 file\(s\) \(50700 bytes\) in 2 directories, 4 key\(s\), 8 value\(s\), 0 offline"
expect "second boot" "^txfs fsck: clean"
expect "second boot" "^txfs verify: update version 1 installed whole"
expect "second boot" "^txfs:   value Software/Hvkvm/Update \[Version\] = 1 \(u64\)"
"$txfs" fsck "$image" || { echo "FAIL: host fsck"; failed=1; }
"$txfs" ls "$image" --registry Software/Hvkvm/Update | tee "$log"
expect "host ls" "Version \(u64\) = 1$"
[ "$("$txfs" cat "$image" /Windows/System32/hvkernel.dll 2>/dev/null | head -1)" = "hvkvm update version=1 component=hvkernel" ] ||
    { echo "FAIL: host cat of hvkernel.dll"; failed=1; }
check_image="$(dirname "$0")/vm_kill.sh --txfs $txfs --check-image $image"
[ "$($check_image)" = 1 ] || { echo "FAIL: the kill test's check does not find version 1 whole"; failed=1; }
"$txfs" set "$image" Software/Hvkvm/Update/Components hvvideo string 2 || failed=1
echo "\$ vm_kill.sh --check-image (hvvideo's value set to version 2): $($check_image)"
$check_image >/dev/null && { echo "FAIL: the kill test's check missed a mix of versions"; failed=1; }
boot "txfs=ata0 txfs_verify" 4
expect "mixed versions" "^txfs verify: INCONSISTENT: version 1: value hvvideo is \"2\""
[ "$failed" = 0 ] && echo PASS
exit "$failed"
