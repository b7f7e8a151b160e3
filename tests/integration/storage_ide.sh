#!/usr/bin/env bash
# The IDE storage scenario end to end: the host prepares a master image (its pattern in one region)
# and a read-only slave, the guest runs the storage.ata_* and storage.block_* tests on them (reads the host's pattern and
# writes its own, by PIO and by DMA; the slave refuses writes; errors past the end and from bad PRD
# tables reach it), and the host then finds the guest's pattern in the master image and the slave
# untouched.
#   storage_ide.sh RUN_VMM VMM CONFIG KERNEL DISK_PATTERN SCRATCH   (exit 77: no usable /dev/kvm)
set -u
run_vmm=$1 vmm=$2 config=$3 kernel=$4 tool=$5 scratch=$6
master="$scratch/storage-master.img" slave="$scratch/storage-slave.img"
trap 'rm -f "$master" "$slave"' EXIT
"$tool" prepare "$master" --size-mib 16 && "$tool" prepare "$slave" --size-mib 8 --read-only || exit 1
"$run_vmm" "$vmm" --needs-kvm --status 0 \
    --expect "^ata0: master \"hvkvm IDE disk\" serial \"ide-master\", 16 MiB" \
    --expect "^ata1: slave \"hvkvm IDE disk\" serial \"ide-slave\", 8 MiB" \
    --expect "^ok   storage.ata_reads_the_host_pattern_by_pio_and_dma" \
    --expect "^ok   storage.ata_writes_the_guest_pattern_by_pio_and_dma" \
    --expect "^ok   storage.ata_read_only_disk_refuses_writes" \
    --expect "^ok   storage.ata_errors_past_the_end_and_bad_prd_tables_reach_the_guest" \
    --expect "^[0-9]+ passed, 0 failed, 2 skipped" \
    --expect "ide +master \"ide-master\" \\(16 MiB\\), slave \"ide-slave\" \\(8 MiB, read-only\\): .* 3 bus-master errors, 0 host I/O errors" \
    -- run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$master" --set "disks[0].id=ide-master" \
       --set "disks[1].id=ide-slave" --set "disks[1].path=$slave" --set "disks[1].bus=ide" --set "disks[1].read_only=true" \
       --set "kernel.cmdline=test=storage.ata_*,storage.block_*"
status=$?
[ "$status" = 0 ] || exit "$status"
"$tool" check "$master" && "$tool" check "$slave"
