#!/usr/bin/env bash
# The VMBus echo benchmark as a program: the guest's echo VSC (kernel cmdline bench=vmbus_echo)
# against the root partition's echo VSP (hvkvm-root). One boot per row so that the VM's KVM
# counters at exit belong to that row, interleaved with a boot that does no echo work (its exits
# are subtracted). Builds nothing: run it on a built tree, from the source folder.
#
#   tests/bench/vmbus_echo.sh [--repeat N] [--vcpus N] [VMM] [KERNEL]
#   defaults: --repeat 3 --vcpus 1 build/bin/vmm build/bin/guest-kernel.elf
#
# Rows: the four cases with the default config (the host scheduler places hvkvm-root, poll window
# vmbus.poll_window_us = 50 µs), then qd1-busy twice more: with no window (0 µs: the VSP unmasks
# after every drain, as before the window existed), and with the root on a CPU of its own
# (vmbus.root_cpus=[1]: the root runs there and the VMM keeps the vCPU threads off it; skipped on a
# one-CPU host).
#   busy-64 / busy-4k: messages/s, 64 B and 4 KiB, up to 256 / 32 requests in flight, batched;
#   qd1-busy / qd1-idle: round trip p50 / p99 at queue depth 1 (busy: the guest polls for the
#     answer; idle: 1 ms pauses, the guest sleeps and the channel interrupt wakes it);
#   signals/msg: the guest's HvSignalEvent calls (each one KVM exit on the ioeventfd doorbell);
#   interrupts/msg: the channel interrupts the guest took;
#   KVM exits/msg: (the VM's exits at exit - the idle boot's) / messages, all vCPUs, so it also
#     counts the timer and halt exits of the time the case ran (the idle case's 1 ms sleeps);
#   poll: the root's echo VSP window (root-partition/poll_window.h): hits / misses / skipped.
# Per boot it prints one line; then, per row, the median and [min - max] over the boots.
set -euo pipefail
repeat=3 vcpus=1
while [ $# -gt 0 ]; do
    case $1 in
        --repeat) repeat=$2; shift 2 ;;
        --vcpus) vcpus=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        --*) echo "vmbus_echo.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
vmm=${1:-build/bin/vmm}
kernel=${2:-build/bin/guest-kernel.elf}
config=configs/default.json
for file in "$vmm" "$kernel" "$(dirname "$vmm")/hvkvm-root" "$config"; do
    [ -f "$file" ] || { echo "vmbus_echo.sh: $file is missing (build the tree first; run from the source folder)" >&2; exit 2; }
done

# label|case|extra vmm options
rows=("busy-64|busy-64|" "busy-4k|busy-4k|" "qd1-busy|qd1-busy|" "qd1-idle|qd1-idle|"
      "qd1-busy,no-window|qd1-busy|--set vmbus.poll_window_us=0")
if [ "$(nproc)" -ge 2 ]; then
    rows+=("qd1-busy,root-own-cpu|qd1-busy|--set vmbus.root_cpus=[1]")
else
    echo "vmbus_echo.sh: one host CPU: the root-on-its-own-CPU row is skipped" >&2
fi

out=$(mktemp) err=$(mktemp) samples=$(mktemp)
trap 'rm -f "$out" "$err" "$samples"' EXIT
boot() {  # boot CMDLINE [OPTIONS...]: console in $out, the VMM's and root's log and report in $err
    local cmdline=$1
    shift
    "$vmm" run "$config" --set kernel.path="$kernel" --set machine.vcpus="$vcpus" --set "kernel.cmdline=$cmdline" \
        "$@" >"$out" 2>"$err" || { echo "vmbus_echo.sh: the boot with \"$cmdline\" failed:" >&2; cat "$out" "$err" >&2; exit 1; }
}
kvm_exits() { grep -A3 'KVM counters (KVM_GET_STATS_FD), all vCPUs' "$err" | grep -oE '(^| )exits=[0-9]+' | head -1 | grep -oE '[0-9]+'; }
poll_counts() {  # the root's line at the channel's close: "hits misses skipped"
    grep -oE 'poll window [0-9]+ µs: [0-9]+ hits, [0-9]+ misses, [0-9]+ skipped' "$err" | tail -1 | awk '{ print $5, $7, $9 }'
}

echo "bench vmbus_echo: $repeat boot(s) per row, $vcpus vCPU(s), $(nproc) host CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-3s %-22s %10s %7s %7s %8s %8s %9s %20s %9s\n' run row "msgs/s" "p50 µs" "p99 µs" "sig/msg" "int/msg" \
    "exits/msg" "poll hit/miss/skip" messages
for run in $(seq "$repeat"); do
    boot ""
    base=$(kvm_exits)
    for row in "${rows[@]}"; do
        IFS='|' read -r label case options <<<"$row"
        # shellcheck disable=SC2086 # options are words
        boot "bench=vmbus_echo vmbus_echo_only=$case" $options
        line=$(grep -E "^$case " "$out") || { echo "vmbus_echo.sh: no result for $label:" >&2; cat "$out" "$err" >&2; exit 1; }
        read -r hits misses skipped <<<"$(poll_counts)"
        # Throughput lines: case payload B window rate [min - max] signals interrupts messages;
        # latency lines: case payload B p50 p99 p50-of-rounds [min - max] signals interrupts messages.
        awk -v run="$run" -v label="$label" -v exits="$(kvm_exits)" -v base="$base" \
            -v polls="${hits:-0}/${misses:-0}/${skipped:-0}" '
            {
                if ($1 ~ /^busy/) { rate = $5; p50 = "-"; p99 = "-"; signals = $9; interrupts = $10; messages = $11 }
                else { rate = "-"; p50 = $4; p99 = $5; signals = $10; interrupts = $11; messages = $12 }
                printf "%-3s %-22s %10s %7s %7s %8s %8s %9.4f %20s %9s\n", run, label, rate, p50, p99, signals, interrupts,
                       (exits - base) / messages, polls, messages
            }' <<<"$line" | tee -a "$samples"
    done
done

echo
echo "median [min - max] over $repeat boot(s):"
stat() {  # stat LABEL COLUMN
    awk -v row="$1" -v col="$2" '$2 == row && $col != "-" { print $col }' "$samples" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (a[1] == a[NR]) print a[1];
                                   else printf "%s [%s - %s]\n", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
echo "| row | messages/s | p50 µs | p99 µs | signals/msg | interrupts/msg | KVM exits/msg |"
echo "|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
    label=${row%%|*}
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(stat "$label" 3)" "$(stat "$label" 4)" "$(stat "$label" 5)" \
        "$(stat "$label" 6)" "$(stat "$label" 7)" "$(stat "$label" 8)"
done
