#!/usr/bin/env bash
# The storage benchmark (issue 10): the same workloads on one image file through every path a
# guest has to a disk, side by side in one run against the host's own I/O on that file:
#
#   host    fio on the host: io_uring, O_DIRECT, the same file, region, block size and queue depth
#   pio     the guest's bench=io on the emulated IDE disk by PIO   (a VM exit per register access)
#   dma     the same by bus-master DMA                             (a few exits per command)
#   vmbus   the same on the synthetic SCSI disk (storvsc <-> storvsp, io_uring in the root partition)
#
# Per cell (pattern x operation x block size x queue depth): IOPS, MB/s, latency p50/p99, exits and
# interrupts per I/O from KVM's counters over the workload alone (the guest's measurement window,
# abi::kStatsWindowPort), device interrupts per I/O (the guest block layer's count) and the ratio to
# the host. A bus whose disk the guest cannot drive (no driver yet) is reported as such, not run.
# Writes a Markdown table, the raw samples and PNG plots (gnuplot); progress goes to stderr.
#
#   tests/bench/storage.sh [--quick] [--repeat N] [--time-ms MS] [--buses host,pio,dma,vmbus]
#                          [--cells "rand,read,4k,32 ..."] [--out DIR] [--build DIR] [--image FILE]
#                          [--image-mib N] [--max-cell-s S] [--no-plots]
#
# Defaults: the full matrix (seq/rand x read/write x 4k/64k/1m x QD 1/32), 3 repeats of 250 ms per
# cell, every bus, results in docs/benchmarks/ (storage-results.md, storage-samples.tsv,
# storage-*.png), a 1 GiB image build/storage-bench-1g.img (written once); about 2.5 minutes here,
# 5 with --repeat 5 (what docs/benchmarks/storage.md shows).
# --quick: one cell (4 KiB random read, QD 1) per bus, 150 ms, one repeat, a 64 MiB image, results
# in build/storage-bench-quick/ (what the ctest smoke test runs).
#
# IDE runs one command at a time: its QD 32 is 32 requests queued in the guest's block layer in
# front of a depth-1 device. A cell whose queued I/O would take longer than --max-cell-s to drain
# (projected from the same bus's smaller blocks in this run: PIO writes of 64 KiB and more) is
# skipped and the table says so. Exit status: 0, 1 on a failed run, 2 on bad arguments.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
out=""
image=""
image_mib=1024  # 4x the guest's RAM; O_DIRECT on both sides, so neither page cache holds it
repeat=3
time_ms=250
max_cell_s=4
buses="host,pio,dma,vmbus"
cells=""
quick=0
plots=1
# bench=io's name for the first VMBus LUN (storvsc); VMBUS_DEVICE=sd1 ... picks another.
vmbus_device=${VMBUS_DEVICE:-vmbus}

usage() { sed -n '/^#   tests/,/^# Defaults/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1 >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --repeat) repeat=${2:?}; shift ;;
    --time-ms) time_ms=${2:?}; shift ;;
    --buses) buses=${2:?}; shift ;;
    --cells) cells=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --build) build=${2:?}; shift ;;
    --image) image=${2:?}; shift ;;
    --max-cell-s) max_cell_s=${2:?}; shift ;;
    --image-mib) image_mib=${2:?}; shift ;;
    --no-plots) plots=0 ;;
    *) usage ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    repeat=1 time_ms=150 max_cell_s=2 image_mib=64
    cells=${cells:-"rand,read,4k,1"}
    out=${out:-$build/storage-bench-quick}
    image=${image:-$build/storage-bench-quick.img}
fi
out=${out:-$root/docs/benchmarks}
image=${image:-$build/storage-bench-1g.img}
if [ -z "$cells" ]; then
    for bs in 4k 64k 1m; do for pattern in rand seq; do for op in read write; do for qd in 1 32; do
        cells+="$pattern,$op,$bs,$qd "
    done; done; done; done
fi
[[ $repeat =~ ^[1-9][0-9]*$ && $time_ms =~ ^[1-9][0-9]*$ && $max_cell_s =~ ^[1-9][0-9]*$ && $image_mib =~ ^[1-9][0-9]*$ ]] || usage
[ "$image_mib" -le 1024 ] || { echo "--image-mib: at most 1024 (bench=io uses at most 1 GiB)" >&2; exit 2; }
for cell in $cells; do
    [[ $cell =~ ^(seq|rand),(read|write),(4k|64k|1m|[0-9]+),([1-9]|[1-5][0-9]|6[0-4])$ ]] || { echo "bad cell $cell" >&2; usage; }
done
vmm=$build/bin/vmm
kernel=$build/bin/guest-kernel.elf
region_mib=$image_mib

declare -A label=([host]="host (fio)" [pio]="IDE-PIO" [dma]="IDE-DMA" [vmbus]="VMBus")
declare -A disk_bus=([pio]=ide [dma]=ide [vmbus]=vmbus)
declare -A bus_cmdline=([pio]="ata=pio io.device=ata0" [dma]="ata=dma io.device=ata0" [vmbus]="io.device=$vmbus_device")
declare -A unavailable=()  # bus -> why it is not run

started=$SECONDS
progress() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*" >&2; }
bytes_of() { case $1 in *k) echo $((${1%k} * 1024)) ;; *m) echo $((${1%m} * 1048576)) ;; *) echo "$1" ;; esac; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/storage-bench-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
samples=$scratch/samples.tsv
: >"$samples"

# --- what can run here -------------------------------------------------------------------------

check_prerequisites() {
    local bus
    for bus in ${buses//,/ }; do
        [ -n "${label[$bus]:-}" ] || { echo "unknown bus $bus (host, pio, dma, vmbus)" >&2; exit 2; }
    done
    command -v fio >/dev/null || unavailable[host]="fio is not installed (.ci/install-deps installs it)"
    local kvm_reason=""
    if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then kvm_reason="no usable /dev/kvm"
    elif [ ! -x "$vmm" ] || [ ! -f "$kernel" ] || [ ! -x "$build/bin/hvkvm-root" ]; then
        kvm_reason="$build/bin has no vmm, guest-kernel.elf or hvkvm-root (build them)"
    fi
    if [ -n "$kvm_reason" ]; then unavailable[pio]=$kvm_reason unavailable[dma]=$kvm_reason unavailable[vmbus]=$kvm_reason; fi
}

prepare_image() {
    if [ -f "$image" ] && [ "$(stat -c %s "$image")" = $((image_mib << 20)) ]; then return; fi
    progress "writing $image ($image_mib MiB, once: every block allocated, so reads reach the disk)"
    mkdir -p "$(dirname "$image")"
    dd if=/dev/zero of="$image" bs=1M count=$image_mib conv=fsync status=none
}

# --- one measurement ---------------------------------------------------------------------------

run_host() {  # run_host RUN PATTERN OP BS QD
    local rw
    case $2,$3 in seq,read) rw=read ;; seq,write) rw=write ;; rand,read) rw=randread ;; rand,write) rw=randwrite ;; esac
    local terse
    terse=$(fio --name=cell --filename="$image" --direct=1 --ioengine=io_uring --rw=$rw --bs="$4" --iodepth="$5" \
        --size=${region_mib}M --runtime=${time_ms}ms --time_based --clat_percentiles=0 --lat_percentiles=1 \
        --percentile_list=50:99 --randrepeat=0 --output-format=terse --terse-version=3 2>&1) ||
        { echo "fio failed: $terse" >&2; return 1; }
    # Terse v3: the read group's fields start at 6, the write group's at 47: KiB, KiB/s, IOPS,
    # runtime ms, ..., then the latency percentiles "50.000000%=us" and "99.000000%=us".
    local base=5
    [ "$3" = write ] && base=46
    awk -F';' -v b=$base -v run="$1" -v pattern="$2" -v op="$3" -v bs="$(bytes_of "$4")" -v qd="$5" '
        NF > 80 {
            iops = $(b + 3); runtime_ms = $(b + 4)
            split($(b + 13), p50, "="); split($(b + 14), p99, "=")
            printf "%s\thost\t%s\t%s\t%s\t%s\t%d\t%.1f\t%.2f\t%d\t%d\t-\t-\t-\n", run, pattern, op, bs, qd,
                iops * runtime_ms / 1000, iops, iops * bs / 1e6, p50[2], p99[2]
        }' <<<"$terse" >>"$samples"
    tail -1 "$samples" | grep -q "^$1"$'\t'host$'\t'"$2"$'\t'"$3"$'\t' || { echo "fio printed no result: $terse" >&2; return 1; }
}

write_config() {  # write_config BUS: the VM's config for that bus's disk
    cat >"$scratch/$1.json" <<JSON
{
  "machine": {"vcpus": 2, "memory_mib": 256},
  "kernel": {"path": "$kernel", "cmdline": ""},
  "disks": [{"id": "bench", "path": "$image", "bus": "${disk_bus[$1]}", "cache": "none"}]
}
JSON
}

boot() {  # boot BUS CMDLINE: the run's whole output (console and report)
    "$vmm" run "$scratch/$1.json" --set "kernel.cmdline=${bus_cmdline[$1]} $2" 2>&1
}

# KVM's counter NAME over the guest's measurement window, or "" when the window was not reported.
window_counter() {
    awk -v name="$1" '
        /^--- KVM counters in the guest.s measurement window/ { inside = 1; next }
        /^---/ { inside = 0 }
        inside { for (i = 1; i <= NF; ++i) { split($i, kv, "="); if (kv[1] == name) { print kv[2]; exit } } }'
}
field() { grep -oE "(^| )$1=[0-9.]+" | head -1 | cut -d= -f2; }

run_guest() {  # run_guest RUN BUS PATTERN OP BS QD
    local output result
    output=$(boot "$2" "bench=io io.pattern=$3 io.op=$4 io.bs=$5 io.qd=$6 io.time_ms=$time_ms io.region_mib=$region_mib") ||
        true  # the status is judged by the io-result line and its error count
    result=$(grep '^io-result ' <<<"$output") || { echo "no io-result for $2 $3 $4 $5 QD$6:" >&2; tail -40 <<<"$output" >&2; return 1; }
    [ "$(field errors <<<"$result")" = 0 ] || { echo "I/O errors in $2 $3 $4 $5 QD$6: $result" >&2; return 1; }
    local ios exits irqs
    ios=$(field ios <<<"$result")
    exits=$(window_counter exits <<<"$output")
    irqs=$(window_counter irq_injections <<<"$output")
    [ -n "$exits" ] || { echo "the VMM reported no measurement window for $2 $3 $4 $5 QD$6" >&2; return 1; }
    awk -v run="$1" -v bus="$2" -v pattern="$3" -v op="$4" -v bs="$(bytes_of "$5")" -v qd="$6" -v ios="$ios" \
        -v iops="$(field iops <<<"$result")" -v mbps="$(field mbps <<<"$result")" -v p50="$(field lat_p50_us <<<"$result")" \
        -v p99="$(field lat_p99_us <<<"$result")" -v exits="$exits" -v irqs="${irqs:-0}" \
        -v dev="$(field interrupts <<<"$result")" 'BEGIN {
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.4f\t%.4f\t%.4f\n", run, bus, pattern, op, bs, qd, ios,
                iops, mbps, p50, p99, exits / ios, irqs / ios, dev / ios }' >>"$samples"
}

# A guest bus is run only when the guest finds its disk: one I/O tells.
probe_guest_bus() {
    local output
    output=$(boot "$1" "bench=io io.count=1 io.region_mib=1") || true
    grep -q '^io-result .* errors=0 ' <<<"$output" && return 0
    if grep -q 'bench=io: no block device' <<<"$output"; then
        unavailable[$1]="the guest found no disk on this bus (bench=io: no block device)"
    else
        unavailable[$1]="a one-I/O probe failed: $(grep -m1 -E 'bench=io|error|panic' <<<"$output" || echo 'no io-result')"
    fi
}

# --- skipping cells that would not finish -------------------------------------------------------

declare -A qd1_p50_us=()  # bus/pattern/op/bytes -> the latest QD1 p50 (µs)

# The projected time (ms) to drain QD I/Os of BS bytes, from the same bus's largest smaller (or
# equal) block measured at QD1, scaled by size; 0 when nothing is known yet.
projected_ms() {  # projected_ms BUS PATTERN OP BYTES QD
    local known best=0
    for known in 4096 65536 1048576; do
        if [ "$known" -le "$4" ] && [ -n "${qd1_p50_us[$1/$2/$3/$known]:-}" ]; then best=$known; fi
    done
    if [ "$best" = 0 ]; then echo 0; return; fi
    awk -v p="${qd1_p50_us[$1/$2/$3/$best]}" -v s="$(( $4 / best ))" -v qd="$5" -v t="$time_ms" \
        'BEGIN { printf "%d", t + p * s * qd / 1000 }'
}

declare -A skipped=()  # bus/pattern/op/bytes/qd -> why

# The buses starting at the Nth, wrapping: each run starts a cell with another bus, so that no bus
# always follows the same one (a host write burst leaves the disk busy for the next bus's writes).
rotated() {
    local list=(${buses//,/ }) i
    for ((i = 0; i < ${#list[@]}; ++i)); do printf '%s ' "${list[$(((i + $1) % ${#list[@]}))]}"; done
}

# --- the run -----------------------------------------------------------------------------------

check_prerequisites
runnable() { [ -z "${unavailable[$1]:-}" ]; }
is_guest() { [ "$1" != host ]; }
for bus in ${buses//,/ }; do if is_guest "$bus" && runnable "$bus"; then write_config "$bus"; fi; done
for bus in ${buses//,/ }; do if runnable "$bus"; then prepare_image; break; fi; done
for bus in ${buses//,/ }; do
    if is_guest "$bus" && runnable "$bus"; then probe_guest_bus "$bus"; fi
    if ! runnable "$bus"; then progress "${label[$bus]}: not run: ${unavailable[$bus]}"; fi
done

total=0
for bus in ${buses//,/ }; do if runnable "$bus"; then total=$((total + repeat * $(wc -w <<<"$cells"))); fi; done
done_cells=0
for run in $(seq "$repeat"); do
    for cell in $cells; do
        IFS=, read -r pattern op bs qd <<<"$cell"
        bytes=$(bytes_of "$bs")
        for bus in $(rotated $((run - 1))); do  # interleaved, so the machine's noise hits every bus alike
            runnable "$bus" || continue
            done_cells=$((done_cells + 1))
            what="run $run/$repeat, cell $done_cells/$total: ${label[$bus]} $pattern $op $bs QD$qd"
            if is_guest "$bus"; then
                projection=$(projected_ms "$bus" "$pattern" "$op" "$bytes" "$qd")
                if [ "$projection" -gt $((max_cell_s * 1000)) ]; then
                    skipped[$bus/$pattern/$op/$bytes/$qd]="not run: would take ~$((projection / 1000)) s (over --max-cell-s $max_cell_s)"
                    progress "$what: skipped, projected ${projection} ms"
                    continue
                fi
            fi
            cell_started=$SECONDS
            if [ "$bus" = host ]; then run_host "$run" "$pattern" "$op" "$bs" "$qd"
            else run_guest "$run" "$bus" "$pattern" "$op" "$bs" "$qd"; fi
            IFS=$'\t' read -r -a sample < <(tail -1 "$samples")
            if [ "$qd" = 1 ]; then qd1_p50_us[$bus/$pattern/$op/$bytes]=${sample[9]}; fi
            progress "$what: ${sample[7]} IOPS, ${sample[8]} MB/s, p50 ${sample[9]} µs ($((SECONDS - cell_started)) s)"
        done
    done
done

# --- the table ---------------------------------------------------------------------------------

# "median (min–max)" of column COL over the runs of one row, "median" alone when all agree or
# there is one run, "" when there are none. Columns: 7 ios, 8 iops, 9 mbps, 10 p50, 11 p99,
# 12 exits/io, 13 irqs/io, 14 device irqs/io.
statistic() {  # statistic BUS PATTERN OP BYTES QD COL [median]
    awk -F'\t' -v bus="$1" -v pattern="$2" -v op="$3" -v bs="$4" -v qd="$5" -v col="$6" \
        '$2 == bus && $3 == pattern && $4 == op && $5 == bs && $6 == qd { print $col }' "$samples" | sort -g |
        awk -v only_median="${7:-}" '
            function short(v) {  # three significant digits or so, never an exponent
                if (v !~ /^[0-9.]+$/) return v
                if (v == int(v) || v >= 100) return sprintf("%.0f", v)
                return v >= 10 ? sprintf("%.1f", v) : v >= 1 ? sprintf("%.2f", v) : sprintf("%.3g", v)
            }
            { a[NR] = $1 } END {
            if (NR == 0) exit
            m = a[int((NR + 1) / 2)]
            if (only_median != "" || a[1] == a[NR]) print short(m); else printf "%s (%s–%s)\n", short(m), short(a[1]), short(a[NR]) }'
}

ratio() {  # ratio BUS PATTERN OP BYTES QD: the bus's median IOPS over the host's
    local mine host
    mine=$(statistic "$1" "$2" "$3" "$4" "$5" 8 median)
    host=$(statistic host "$2" "$3" "$4" "$5" 8 median)
    if [ -n "$mine" ] && [ -n "$host" ]; then awk -v a="$mine" -v b="$host" 'BEGIN { if (b > 0) printf "%.3g", a / b }'; fi
}

size_name() { case $1 in 4096) echo "4 KiB" ;; 65536) echo "64 KiB" ;; 1048576) echo "1 MiB" ;; *) echo "$1 B" ;; esac; }

write_table() {
    echo "| bus | pattern | op | block | QD | IOPS | MB/s | p50 µs | p99 µs | exits/I/O | interrupts/I/O | device irqs/I/O | IOPS ÷ host |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    local cell pattern op bs qd bytes bus
    for cell in $cells; do
        IFS=, read -r pattern op bs qd <<<"$cell"
        bytes=$(bytes_of "$bs")
        for bus in ${buses//,/ }; do
            local key=$bus/$pattern/$op/$bytes/$qd
            if ! runnable "$bus"; then
                printf '| %s | %s | %s | %s | %s | not run: %s | | | | | | | |\n' "${label[$bus]}" "$pattern" "$op" "$(size_name "$bytes")" "$qd" "${unavailable[$bus]}"
            elif [ -z "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 8 median)" ]; then
                printf '| %s | %s | %s | %s | %s | %s | | | | | | | |\n' "${label[$bus]}" "$pattern" "$op" "$(size_name "$bytes")" "$qd" "${skipped[$key]:-not run}"
            else
                printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${label[$bus]}" "$pattern" "$op" \
                    "$(size_name "$bytes")" "$qd" "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 8)" \
                    "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 9)" "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 10 median)" \
                    "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 11 median)" "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 12 median)" \
                    "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 13 median)" "$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" 14 median)" \
                    "$([ "$bus" = host ] && echo 1 || ratio "$bus" "$pattern" "$op" "$bytes" "$qd")"
            fi
        done
    done
}

quick_flag=""
if [ "$quick" = 1 ]; then quick_flag=" --quick"; fi
command_line="tests/bench/storage.sh$quick_flag --repeat $repeat --time-ms $time_ms --buses $buses --image-mib $image_mib --max-cell-s $max_cell_s"
mkdir -p "$out"
{
    echo "# Storage benchmark results"
    echo
    echo "Generated by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) host CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "$repeat run(s) of ${time_ms} ms per cell, buses interleaved (each run starting with the next); median (min–max) over the runs. Image: ${image_mib} MiB, O_DIRECT on"
    echo "every path (fio \`--direct=1\`, disks \`cache: none\`), ${region_mib} MiB region; the guest has 2 vCPUs and 256 MiB and one"
    echo "submitting thread, as fio has one job. exits and interrupts per I/O are KVM's counters (\`exits\`, \`irq_injections\`)"
    echo "over the guest's workload alone; device irqs are the guest block layer's count of its disk's interrupts. IDE"
    echo "runs one command at a time: its QD 32 is 32 requests queued in the guest's block layer. Took $((SECONDS - started)) s."
    echo
    write_table
} >"$out/storage-results.md"
{ printf '# %s\n' "run bus pattern op bytes qd ios iops mbps p50_us p99_us exits_per_io irqs_per_io device_irqs_per_io" | tr ' ' '\t'; cat "$samples"; } >"$out/storage-samples.tsv"
progress "wrote $out/storage-results.md and storage-samples.tsv"

# --- plots -------------------------------------------------------------------------------------

# plot NAME TITLE YLABEL COL BYTES BUSES: one group of bars per cell of that block size, a bar per
# bus that ran (medians; log scale: the buses differ by orders of magnitude).
plot() {
    local data=$scratch/$1.dat cell pattern op bs qd bytes bus value plotted=""
    for bus in $6; do if runnable "$bus"; then plotted+="$bus "; fi; done
    {
        printf 'cell'
        for bus in $plotted; do printf '\t"%s"' "${label[$bus]}"; done
        echo
        for cell in $cells; do
            IFS=, read -r pattern op bs qd <<<"$cell"
            bytes=$(bytes_of "$bs")
            [ "$bytes" = "$5" ] || continue
            printf '"%s %s QD%s"' "$pattern" "$op" "$qd"
            for bus in $plotted; do
                value=$(statistic "$bus" "$pattern" "$op" "$bytes" "$qd" "$4" median)
                if ! [[ $value =~ ^[0-9.]+$ ]] || ! awk -v v="$value" 'BEGIN { exit !(v > 0) }'; then value=-; fi
                printf '\t%s' "$value"
            done
            echo
        done
    } >"$data"
    # Nothing measured for this block size or these buses (e.g. --quick, or the host's exits): no plot.
    if [ -z "$plotted" ] || ! tail -n +2 "$data" | cut -f2- | grep -q '[0-9]'; then return 0; fi
    local columns
    columns=$(( $(wc -w <<<"$plotted") + 1 ))
    gnuplot <<GNUPLOT
set terminal pngcairo size 1000,520 font "sans,10"
set output "$out/$1.png"
set title "$2"
set ylabel "$3"
set logscale y
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set datafile missing "-"
set datafile separator "\t"
set key top right
set grid ytics
set xtics rotate by -20
plot for [i=2:$columns] "$data" using i:xtic(1) title columnheader(i)
GNUPLOT
    progress "wrote $out/$1.png"
}

if [ "$plots" = 1 ]; then
    if command -v gnuplot >/dev/null; then
        plot storage-iops-4k "4 KiB I/O: IOPS (median)" "IOPS" 8 4096 "${buses//,/ }"
        plot storage-mbps-64k "64 KiB I/O: MB/s (median)" "MB/s" 9 65536 "${buses//,/ }"
        plot storage-mbps-1m "1 MiB I/O: MB/s (median)" "MB/s" 9 1048576 "${buses//,/ }"
        plot storage-exits-4k "4 KiB I/O: VM exits per I/O (median, KVM's counter over the workload)" "exits per I/O" 12 4096 \
            "$(sed 's/host//' <<<"${buses//,/ }")"
    else
        progress "no gnuplot: plots not drawn (.ci/install-deps installs gnuplot-nox)"
    fi
fi
cat "$out/storage-results.md"
