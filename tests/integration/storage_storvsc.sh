#!/usr/bin/env bash
# The VMBus disk end to end (storvsc in the guest, storvsp in the root partition), in four boots:
#  1. a vmbus master image and a read-only vmbus slave: the storage.storvsc_* tests (the host's
#     pattern read, the guest's written, limits, sub-channels, QD32, hostile requests, DATA
#     PROTECT); the host then finds the guest's pattern in the master and the slave untouched;
#  2. cross-bus, VMBus -> IDE: the same master attached as an IDE disk; the ATA driver reads back
#     what storvsc wrote;
#  3. cross-bus, IDE -> VMBus: a fresh image written through IDE, checked, read back over VMBus;
#  4. a host write error (debug.disk_fault: the 3rd write fails with EIO) reaches the guest as
#     MEDIUM ERROR / WRITE ERROR on that request only; the guest writes it again and the host
#     finds the whole region intact.
#   storage_storvsc.sh RUN_VMM VMM CONFIG KERNEL DISK_PATTERN SCRATCH   (exit 77: no usable /dev/kvm)
set -u
run_vmm=$1 vmm=$2 config=$3 kernel=$4 tool=$5 scratch=$6
dir=$(mktemp -d "$(realpath "$scratch")/storvsc-XXXXXX")
trap 'rm -rf "$dir"' EXIT
master="$dir/master.img" slave="$dir/slave.img" other="$dir/other.img" faulty="$dir/faulty.img"
boot() {  # boot IMAGE BUS TESTS [run_vmm options...]
    local image=$1 bus=$2 tests=$3
    shift 3
    "$run_vmm" "$vmm" --needs-kvm --status 0 "$@" --reject "^FAIL " \
        -- run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$image" --set "disks[0].bus=$bus" \
           --set "disks[0].id=disk-$bus" --set "kernel.cmdline=test=$tests" "${extra[@]}"
}
step() { echo "--- $*"; }

step "1. storvsc on a vmbus master and a read-only vmbus slave"
"$tool" prepare "$master" --size-mib 16 && "$tool" prepare "$slave" --size-mib 8 --read-only || exit 1
extra=(--set "disks[1].id=slave" --set "disks[1].path=$slave" --set "disks[1].bus=vmbus" --set "disks[1].read_only=true")
boot "$master" vmbus 'storage.storvsc_*' \
    --expect "^storvsc: sd0: LUN 0, 16 MiB, 2 channel\\(s\\), max transfer 1024 KiB, protocol 6.2" \
    --expect "^storvsc: sd1: LUN 1, 8 MiB, read-only" \
    --expect "^ok   storage.storvsc_initializes_with_the_hosts_properties" \
    --expect "^ok   storage.storvsc_one_sub_channel_per_vcpu" \
    --expect "^ok   storage.storvsc_reads_the_host_pattern" \
    --expect "^ok   storage.storvsc_writes_the_guest_pattern" \
    --expect "^ok   storage.storvsc_first_and_last_lba_fit_and_one_past_is_refused" \
    --expect "^ok   storage.storvsc_max_transfer_fits_and_one_more_sector_is_split" \
    --expect "^ok   storage.storvsc_qd32_on_every_vcpu_polls_without_an_interrupt_per_request" \
    --expect "^ok   storage.storvsc_read_only_disk_refuses_writes_with_data_protect" \
    --expect "^ok   storage.storvsc_flush_and_fua_complete" \
    --expect "^ok   storage.storvsc_hostile_requests_get_scsi_errors_and_storvsp_keeps_serving" \
    --expect "^[0-9]+ passed, 0 failed, 3 skipped" || exit 1
"$tool" check "$master" && "$tool" check "$slave" || exit 1

step "2. cross-bus: written over VMBus, read back through IDE"
"$tool" mark-written "$master" || exit 1
extra=()
boot "$master" ide 'storage.ata_reads_back_the_guest_pattern' \
    --expect "^ok   storage.ata_reads_back_the_guest_pattern" --expect "^1 passed, 0 failed, 0 skipped" || exit 1

step "3. cross-bus: written through IDE, read back over VMBus"
"$tool" prepare "$other" --size-mib 16 || exit 1
boot "$other" ide 'storage.ata_writes_the_guest_pattern_by_pio_and_dma' \
    --expect "^ok   storage.ata_writes_the_guest_pattern_by_pio_and_dma" || exit 1
"$tool" mark-written "$other" || exit 1
boot "$other" vmbus 'storage.storvsc_reads_back_the_guest_pattern' \
    --expect "^ok   storage.storvsc_reads_back_the_guest_pattern" --expect "^1 passed, 0 failed, 0 skipped" || exit 1

step "4. a host write error on the vmbus disk"
"$tool" prepare "$faulty" --size-mib 16 --fault || exit 1
extra=(--set "debug.disk_fault.disk=disk-vmbus" --set "debug.disk_fault.operation=write" --set "debug.disk_fault.nth=3"
       --set "debug.disk_fault.error=eio")
boot "$faulty" vmbus 'storage.storvsc_host_write_error_surfaces_and_nothing_else_is_lost' \
    --expect "^storvsc: sd0: write of 128 sectors at 8448: device error, SRB status error, sense key 0x3 ASC/ASCQ 0c/00" \
    --expect "^ok   storage.storvsc_host_write_error_surfaces_and_nothing_else_is_lost" \
    --expect "^1 passed, 0 failed, 0 skipped" || exit 1
"$tool" check "$faulty" || exit 1
echo PASS
