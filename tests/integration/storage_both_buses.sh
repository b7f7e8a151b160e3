#!/usr/bin/env bash
# configs/both-buses.json: one boot with a VMBus disk and an IDE disk, an image each. The guest
# reads the host's pattern and writes its own through both buses in the same boot (storvsc and the
# ATA driver side by side on the block layer); the host then checks both images.
#   storage_both_buses.sh RUN_VMM VMM CONFIG KERNEL DISK_PATTERN SCRATCH   (exit 77: no usable /dev/kvm)
set -u
run_vmm=$1 vmm=$2 config=$3 kernel=$4 tool=$5 scratch=$6
dir=$(mktemp -d "$(realpath "$scratch")/both-buses-XXXXXX")
trap 'rm -rf "$dir"' EXIT
synthetic="$dir/synthetic.img" emulated="$dir/emulated.img"
"$tool" prepare "$synthetic" --size-mib 16 && "$tool" prepare "$emulated" --size-mib 16 || exit 1
tests='storage.storvsc_reads_the_host_pattern,storage.storvsc_writes_the_guest_pattern'
tests+=',storage.ata_reads_the_host_pattern_by_pio_and_dma,storage.ata_writes_the_guest_pattern_by_pio_and_dma'
"$run_vmm" "$vmm" --needs-kvm --status 0 --reject "^FAIL " --reject "^skip " \
    --expect "^storvsc: sd0: LUN 0, 16 MiB" \
    --expect "^ata0: master \"hvkvm IDE disk\" serial \"emulated\", 16 MiB" \
    --expect "^4 passed, 0 failed, 0 skipped" \
    -- run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$synthetic" --set "disks[1].path=$emulated" \
       --set "kernel.cmdline=test=$tests"
status=$?
[ "$status" -eq 0 ] || exit "$status"
for image in "$synthetic" "$emulated"; do
    "$tool" check "$image" || { echo "FAIL: $(basename "$image"): the guest's pattern is not on the image"; exit 1; }
done
echo "both images hold the guest's pattern"
