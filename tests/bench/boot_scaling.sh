#!/usr/bin/env bash
# Boot-time scaling: VMM start -> guest main with 1 vCPU and with N vCPUs, measured interleaved in
# one run (so machine noise hits both alike), and their ratio. The guest has nothing to do after
# booting (an empty kernel.cmdline), so each run ends on its own.
#
#   tests/bench/boot_scaling.sh [VMM] [CONFIG] [VCPUS] [RUNS]
#   defaults: build/bin/vmm configs/default.json 8 15
set -euo pipefail
vmm=${1:-build/bin/vmm}
config=${2:-configs/default.json}
vcpus=${3:-8}
runs=${4:-15}

main_ms() {  # prints the "guest main reached" figure of one run
    "$vmm" run "$config" --set machine.vcpus="$1" --set kernel.cmdline= 2>&1 | grep -oE 'guest main reached [0-9.]+' | grep -oE '[0-9.]+$'
}

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for i in $(seq "$runs"); do
    echo "1 $(main_ms 1)" >>"$samples"
    echo "$vcpus $(main_ms "$vcpus")" >>"$samples"
    printf '\rrun %d/%d' "$i" "$runs" >&2
done
echo >&2

summary() {  # prints "min median max" for one vCPU count
    awk -v n="$1" '$1 == n { print $2 }' "$samples" | sort -n |
        awk '{ a[NR] = $1 } END { printf "%s %s %s", a[1], a[int((NR + 1) / 2)], a[NR] }'
}
read -r min1 med1 max1 <<<"$(summary 1)"
read -r minn medn maxn <<<"$(summary "$vcpus")"
printf 'boot to guest main, ms (%d runs each, interleaved)\n' "$runs"
printf '  %-10s min %6s  median %6s  max %6s\n' "1 vCPU" "$min1" "$med1" "$max1"
printf '  %-10s min %6s  median %6s  max %6s\n' "$vcpus vCPUs" "$minn" "$medn" "$maxn"
awk -v a="$medn" -v b="$med1" -v n="$vcpus" 'BEGIN { printf "  median ratio %d vCPUs / 1 vCPU: %.2f\n", n, a / b }'
