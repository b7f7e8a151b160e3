#!/usr/bin/env bash
# Spinlock contention under overcommit: boots the guest with 4x as many vCPUs as this host has
# CPUs and runs its in-guest benchmark (kernel cmdline bench=spinlock), which measures the naive
# ticket lock, test-and-set, and the paravirtual ticket lock (yield and halt+kick) side by side at
# 1x, 2x and 4x the host's CPUs. Repeats the boot RUNS times and summarises the enlightened /
# naive throughput ratios over the runs.
#
#   tests/bench/spinlock_contention.sh [VMM] [CONFIG] [RUNS]
#   defaults: build/bin/vmm configs/default.json 3
set -euo pipefail
vmm=${1:-build/bin/vmm}
config=${2:-configs/default.json}
runs=${3:-3}
host_cpus=$(nproc)
vcpus=$((host_cpus * 4))
[ "$vcpus" -gt 64 ] && vcpus=64

ratios=$(mktemp)
trap 'rm -f "$ratios"' EXIT
for run in $(seq "$runs"); do
    echo "=== run $run of $runs: $vcpus vCPUs on $host_cpus host CPUs"
    output=$("$vmm" run "$config" --set machine.vcpus="$vcpus" --set kernel.cmdline=bench=spinlock 2>/dev/null)
    sed -n '/^bench spinlock/,/^median throughput/p' <<<"$output"
    grep '^median throughput' <<<"$output" | grep -oE '[0-9]+x: [0-9.]+' >>"$ratios" || true
done

echo "=== pv ticket (halt+kick) / naive ticket, median throughput ratio over $runs runs"
for level in 1x 2x 4x; do
    values=$(awk -v l="$level:" '$1 == l { print $2 }' "$ratios" | sort -n)
    [ -z "$values" ] && continue
    count=$(wc -l <<<"$values")
    median=$(sed -n "$(((count + 1) / 2))p" <<<"$values")
    printf '  %-3s median %s   (runs: %s)\n' "$level" "$median" "$(tr '\n' ' ' <<<"$values")"
done
