#!/usr/bin/env bash
# Flush, then kill -9: the guest writes its region of a disk, flushes, says so, and keeps writing
# elsewhere; the host kills the vmm outright and must then find the flushed region intact in the
# image. BUS is ide (the default: the ATA driver) or vmbus (storvsc).
#   storage_flush_kill.sh VMM CONFIG KERNEL DISK_PATTERN SCRATCH [BUS]   (77: no /dev/kvm)
set -u
vmm=$1 config=$2 kernel=$3 tool=$4 scratch=$5 bus=${6:-ide}
case $bus in
    ide) test_name=storage.ata_flush_survives_a_vmm_kill ;;
    vmbus) test_name=storage.storvsc_flush_survives_a_vmm_kill ;;
    *) echo "unknown bus $bus"; exit 2 ;;
esac
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
image="$scratch/storage-flush-kill-$bus.img"
log=$(mktemp)
trap 'rm -f "$log" "$image"; kill -KILL "$pid" 2>/dev/null' EXIT
"$tool" prepare "$image" --size-mib 16 --flush-kill || exit 1
"$vmm" run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$image" --set "disks[0].bus=$bus" \
    --set "kernel.cmdline=test=$test_name" >"$log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    grep -q "written and flushed; waiting to be killed" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
flushed=0
grep -q "written and flushed; waiting to be killed" "$log" && flushed=1
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cat "$log"
[ "$flushed" = 1 ] || { echo "FAIL: the guest never reported its flush"; exit 1; }
"$tool" check "$image" || { echo "FAIL: data acknowledged before the flush is not in the image"; exit 1; }
echo PASS
