#!/usr/bin/env bash
# The guest I/O workload (bench=io) on the emulated IDE disk, by PIO and by DMA, and on the same
# image as a VMBus disk (storvsc): one boot per configuration and run, and a Markdown table of
# medians (with the range over the runs) of IOPS, MB/s, latency p50/p99 (guest TSC), VM exits per
# I/O (the VMM's count of IDE register exits, and KVM's count of all exits less an idle boot's),
# and interrupts per I/O (the block layer's count: the IDE interrupt, or the VMBus channel's).
#
#   tests/bench/storage_ide.sh [VMM] [KERNEL] [RUNS] [MS_PER_RUN]
#   defaults: build/bin/vmm build/bin/guest-kernel.elf 3 1000
#   WORKLOADS="rand,read,4k,1 seq,read,1m,1 ..." overrides the list of pattern,op,bs,qd.
#   MODES="pio dma vmbus" (the default: pio dma) picks the paths; KERNEL_ARGS="storvsc.poll_us=0"
#   adds words to every boot's kernel command line.
#
# The image (256 MiB, written through so its blocks exist) lives in build/ and is opened with
# cache "none" (O_DIRECT), so reads reach the host's disk rather than its page cache.
set -euo pipefail
vmm=${1:-build/bin/vmm}
kernel=${2:-build/bin/guest-kernel.elf}
runs=${3:-3}
ms=${4:-1000}
workloads=${WORKLOADS:-"rand,read,4k,1 rand,read,4k,32 rand,write,4k,1 seq,read,64k,1 seq,read,1m,1 seq,write,1m,1"}
modes=${MODES:-"pio dma"}
image=build/storage-bench.img
config=configs/ide-disk.json

if [ ! -s "$image" ] || [ "$(stat -c %s "$image")" != $((256 << 20)) ]; then
    echo "writing $image (256 MiB)" >&2
    dd if=/dev/zero of="$image" bs=1M count=256 conv=fsync status=none
fi

bus_of() { if [ "$1" = vmbus ]; then echo vmbus; else echo ide; fi; }
boot() {  # boot MODE CMDLINE: the whole run's output (pio and dma: the ATA driver's mode)
    local ata_mode=$1
    [ "$1" = vmbus ] && ata_mode=dma
    "$vmm" run "$config" --set kernel.path="$kernel" --set "disks[0].path=$image" --set "disks[0].bus=$(bus_of "$1")" \
        --set "kernel.cmdline=ata=$ata_mode ${KERNEL_ARGS:-} $2" 2>&1
}
kvm_exits() { grep -A3 'KVM counters (KVM_GET_STATS_FD), all vCPUs' | grep -oE '(^| )exits=[0-9]+' | head -1 | grep -oE '[0-9]+'; }
ide_exits() { grep -oE '^ +[0-9]+  pio ide$' | grep -oE '[0-9]+' || echo 0; }
field() { grep -oE "(^| )$1=[0-9.]+" | head -1 | cut -d= -f2; }

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
declare -A baseline
for mode in $modes; do  # an idle boot's exits, subtracted from every run
    baseline[$mode]=$(boot "$mode" "" | kvm_exits)
done

total=$((runs * $(wc -w <<<"$modes") * $(wc -w <<<"$workloads")))
done_runs=0
for run in $(seq "$runs"); do
    for workload in $workloads; do
        IFS=, read -r pattern op bs qd <<<"$workload"
        for mode in $modes; do  # interleaved, so machine noise hits all alike
            output=$(boot "$mode" "bench=io io.device=$(bus_of "$mode") io.pattern=$pattern io.op=$op io.bs=$bs io.qd=$qd io.time_ms=$ms")
            result=$(grep '^io-result ' <<<"$output") || { echo "no io-result for $mode $workload:" >&2; echo "$output" >&2; exit 1; }
            ios=$(field ios <<<"$result")
            all=$(kvm_exits <<<"$output")
            printf '%s %s %s %s %s %s %s %s %s\n' "$mode/$workload" "$(field iops <<<"$result")" "$(field mbps <<<"$result")" \
                "$(field lat_p50_us <<<"$result")" "$(field lat_p99_us <<<"$result")" \
                "$(awk -v e="$(ide_exits <<<"$output")" -v n="$ios" 'BEGIN { printf "%.1f", e / n }')" \
                "$(awk -v e="$all" -v b="${baseline[$mode]}" -v n="$ios" 'BEGIN { printf "%.1f", (e - b) / n }')" \
                "$(awk -v i="$(field interrupts <<<"$result")" -v n="$ios" 'BEGIN { printf "%.2f", i / n }')" \
                "$ios" >>"$samples"
            done_runs=$((done_runs + 1))
            printf '\r%d/%d runs' "$done_runs" "$total" >&2
        done
    done
done
echo >&2

stat() {  # stat KEY COLUMN: "median (min–max)" over the runs
    awk -v key="$1" -v col="$2" '$1 == key { print $col }' "$samples" | sort -g |
        awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; if (a[1] == a[NR]) print m; else printf "%s (%s–%s)\n", m, a[1], a[NR] }'
}
median() { awk -v key="$1" -v col="$2" '$1 == key { print $col }' "$samples" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "bench=io ($modes${KERNEL_ARGS:+, $KERNEL_ARGS}): $runs boots per row, ${ms} ms each; median (min–max)"
echo
echo "| mode | pattern | op | block | QD | IOPS | MB/s | p50 µs | p99 µs | IDE register exits/I/O | all exits/I/O | interrupts/I/O |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for workload in $workloads; do
    IFS=, read -r pattern op bs qd <<<"$workload"
    for mode in $modes; do
        key="$mode/$workload"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${mode^^}" "$pattern" "$op" "$bs" "$qd" \
            "$(stat "$key" 2)" "$(stat "$key" 3)" "$(median "$key" 4)" "$(median "$key" 5)" "$(median "$key" 6)" \
            "$(median "$key" 7)" "$(median "$key" 8)"
    done
done
