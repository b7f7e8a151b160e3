#!/usr/bin/env bash
# Virtual NUMA benchmark (bench=numa in the guest, docs/benchmarks.md): boots the same 4-vCPU,
# 256 MiB guest with one node and with four nodes of 64 MiB, interleaved (so machine noise hits
# both alike), and summarises:
#   - the allocation fast path (allocate + free of one page, and of a 64-byte heap object), its
#     median per configuration and the ratio 4 nodes / 1 node (the target is <= 1.2);
#   - with four nodes: the share of pages from the ideal node and from the CPU's node under load,
#     and the page migration rate (unlimited, and through the rate-limited migration thread).
#
#   tests/bench/numa.sh [VMM] [KERNEL] [RUNS]
#   defaults: build/bin/vmm build/bin/guest-kernel.elf 7
set -euo pipefail
vmm=${1:-build/bin/vmm}
kernel=${2:-build/bin/guest-kernel.elf}
runs=${3:-7}
config=configs/default.json
four_nodes='numa.nodes=[{"vcpus":[0],"memory_mib":64},{"vcpus":[1],"memory_mib":64},{"vcpus":[2],"memory_mib":64},{"vcpus":[3],"memory_mib":64}]'

boot() {  # boot NODES: the guest's benchmark output
    local nodes=()
    [ "$1" = 4 ] && nodes=(--set "$four_nodes")
    "$vmm" run "$config" --set kernel.path="$kernel" --set machine.vcpus=4 "${nodes[@]}" --set kernel.cmdline=bench=numa 2>&1
}

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for i in $(seq "$runs"); do
    for nodes in 1 4; do
        output=$(boot "$nodes")
        page=$(grep -oE 'page: allocate_pages\(0\) \+ free_pages +median +[0-9.]+' <<<"$output" | grep -oE '[0-9.]+$')
        heap=$(grep -oE 'heap: allocate\(64\) \+ free +median +[0-9.]+' <<<"$output" | grep -oE '[0-9.]+$')
        echo "page$nodes $page" >>"$samples"
        echo "heap$nodes $heap" >>"$samples"
        if [ "$nodes" = 4 ]; then
            grep -E '^  1 thread per vCPU: ' <<<"$output" | grep -oE 'ideal node +[0-9.]+' | awk '{ print "ideal1", $3 }' >>"$samples"
            grep -E '^  1 thread per vCPU: ' <<<"$output" | grep -oE 'of the node +[0-9.]+' | awk '{ print "cpu1", $4 }' >>"$samples"
            grep -E '^  3 threads per vCPU' <<<"$output" | grep -oE 'ideal node +[0-9.]+' | awk '{ print "ideal3", $3 }' >>"$samples"
            grep -E '^  3 threads per vCPU' <<<"$output" | grep -oE 'of the node +[0-9.]+' | awk '{ print "cpu3", $4 }' >>"$samples"
            grep -E 'node 0 full: ' <<<"$output" | grep -oE 'ideal node +[0-9.]+' | awk '{ print "idealfull", $3 }' >>"$samples"
            grep -oE 'unlimited .*: median [0-9]+' <<<"$output" | grep -oE '[0-9]+$' | awk '{ print "unlimited", $1 }' >>"$samples"
            grep -oE 'by the migration thread, rate limit [0-9]+ pages/s: [0-9]+' <<<"$output" | grep -oE '[0-9]+$' |
                awk '{ print "limited", $1 }' >>"$samples"
        fi
    done
    printf '\rrun %d/%d' "$i" "$runs" >&2
done
echo >&2

summary() {  # prints "min median max" of one series
    awk -v key="$1" '$1 == key { print $2 }' "$samples" | sort -n |
        awk '{ a[NR] = $1 } END { printf "%s %s %s", a[1], a[int((NR + 1) / 2)], a[NR] }'
}
line() {  # line LABEL KEY UNIT
    read -r min med max <<<"$(summary "$2")"
    printf '  %-44s median %10s  (min %s, max %s) %s\n' "$1" "$med" "$min" "$max" "$3"
}
printf 'bench=numa, 4 vCPUs, 256 MiB; %d boots per configuration, interleaved\n' "$runs"
echo "allocation fast path (ns per allocate + free pair; each boot's median of 9 rounds)"
line "page, 1 node" page1 ns
line "page, 4 nodes" page4 ns
line "heap (64 bytes), 1 node" heap1 ns
line "heap (64 bytes), 4 nodes" heap4 ns
read -r _ page1 _ <<<"$(summary page1)"
read -r _ page4 _ <<<"$(summary page4)"
read -r _ heap1 _ <<<"$(summary heap1)"
read -r _ heap4 _ <<<"$(summary heap4)"
awk -v a="$page4" -v b="$page1" -v c="$heap4" -v d="$heap1" \
    'BEGIN { printf "  median ratio 4 nodes / 1 node: page %.2f, heap %.2f (target <= 1.2)\n", a / b, c / d }'
echo "locality with 4 nodes (percent of pages; 300 ms of page + heap churn)"
line "1 thread per vCPU, from the ideal node" ideal1 %
line "1 thread per vCPU, by a CPU of the node" cpu1 %
line "3 threads per vCPU, from the ideal node" ideal3 %
line "3 threads per vCPU, by a CPU of the node" cpu3 %
line "node 0 at its low watermark, from the ideal node" idealfull %
echo "migration with 4 nodes (2048 pages, node 0 <-> node 3)"
line "unlimited" unlimited pages/s
line "through the migration thread (limit 6400/s)" limited pages/s
