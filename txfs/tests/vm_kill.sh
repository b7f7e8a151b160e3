#!/usr/bin/env bash
# The VM kill test: a guest installs update after update (fs/txfs/update.h: each version one
# transaction replacing 6 files and 8 registry values, all carrying the version) on a txfs volume,
# and the host kills `vmm` with SIGKILL at a random moment, again and again on the same image.
# After every kill the host tools check the image: `txfs fsck` clean; every component file and
# registry value of the same version (all of an update or none of it); and that version at least the
# last one the guest acknowledged (printed after commit returned). Normally it is that one or the
# next (in flight); more than one past it means acknowledgements were still in vmm's console
# backlog when it died, which is counted and reported, not a violation. Each boot's mount must
# also report the version the host found after the previous kill.
#
#   vm_kill.sh --vmm VMM --txfs TXFS --config CONFIG --kernel KERNEL --scratch DIR
#              [--kills N] [--seed S] [--disk NAME] [--set KEY=VALUE]...
#   vm_kill.sh --txfs TXFS --check-image IMAGE   only the host-side check of one image: prints the
#                                                version it holds whole (exit 0) or the problem (1)
#
# One kill in five lands while the guest boots and mounts (log replay and recovery), the others
# while updates run. Exit 0: no violation; 1: a violation (the image is kept); 77: no /dev/kvm.
set -u
vmm="" txfs="" config="" kernel="" scratch="" kills=50 seed="" disk=ata0 sets=() check_only=""
while [ $# -gt 0 ]; do
    case $1 in
        --vmm) vmm=$2; shift 2 ;;
        --txfs) txfs=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --scratch) scratch=$2; shift 2 ;;
        --kills) kills=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --disk) disk=$2; shift 2 ;;
        --set) sets+=(--set "$2"); shift 2 ;;
        --check-image) check_only=$2; shift 2 ;;
        *) echo "vm_kill.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -n "$check_only" ] && [ -z "$txfs" ]; then echo "vm_kill.sh: --check-image needs --txfs" >&2; exit 2; fi
if [ -z "$check_only" ] && { [ -z "$vmm" ] || [ -z "$txfs" ] || [ -z "$config" ] || [ -z "$kernel" ] || [ -z "$scratch" ]; }; then
    echo "vm_kill.sh: --vmm, --txfs, --config, --kernel and --scratch are required" >&2
    exit 2
fi

components=(hvkernel hvstorage hvnetwork hvvideo hvinput hvtime)
# The version IMAGE holds, all-or-nothing checked with the host tools; echoes it, or fails.
image_version() {
    local image=$1
    local listing version name line
    "$txfs" fsck "$image" >/dev/null 2>&1 || { echo "fsck: $("$txfs" fsck "$image" 2>&1 | tail -3)"; return 1; }
    if ! listing=$("$txfs" ls "$image" --registry Software/Hvkvm/Update 2>/dev/null); then
        # No update installed: nothing of one may be present.
        if "$txfs" ls "$image" /Windows/System32 2>/dev/null | grep -q .; then echo "files without a Version"; return 1; fi
        echo 0
        return 0
    fi
    version=$(sed -n 's/^value .* Version (u64) = \([0-9]*\)$/\1/p' <<<"$listing")
    [ -n "$version" ] || { echo "no Version value"; return 1; }
    listing=$("$txfs" ls "$image" --registry Software/Hvkvm/Update/Components 2>&1) || { echo "no Components key"; return 1; }
    for name in "${components[@]}"; do
        grep -qx "value  *[0-9]* $name (string) = \"$version\"" <<<"$listing" ||
            { echo "value $name is not version $version: $(grep " $name " <<<"$listing")"; return 1; }
        line=$("$txfs" cat "$image" "/Windows/System32/$name.dll" 2>/dev/null | head -1)
        [ "$line" = "hvkvm update version=$version component=$name" ] ||
            { echo "$name.dll is not version $version: $line"; return 1; }
    done
    echo "$version"
}

if [ -n "$check_only" ]; then
    image_version "$check_only"
    exit
fi
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi
[ -n "$seed" ] || seed=$(( $(date +%s%N) % 1000000 ))
RANDOM=$seed
echo "vm_kill: seed $seed (rerun with --seed $seed), $kills kills, disk $disk"

image="$scratch/txfs-vm-kill-$$.img"
log="$scratch/txfs-vm-kill-$$.log"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -f "$log"
}
trap cleanup EXIT
"$txfs" mkfs "$image" --size 16M --inodes 256 --log-blocks 256 >/dev/null || exit 1

violation() {
    echo "VIOLATION after kill $1: $2"
    echo "--- guest output of that run:"
    grep -E "^txfs" "$log" | tail -20
    echo "image kept for inspection: $image"
    trap - EXIT
    exit 1
}

found=0            # the version the image held after the previous kill
ready_ms=200       # how long the last boot took to start updating
commits_seen=0
boot_kills=0
lost_acks=0        # kills after which the image was more than one version past the last printed ack
in_flight=0        # kills after which the image held the version being committed (durable, not yet acknowledged)
start_ns=$(date +%s%N)
for kill_number in $(seq 1 "$kills"); do
    launched_ns=$(date +%s%N)
    : >"$log"  # exists before the background vmm opens it, for the polling below
    "$vmm" run "$config" --set "kernel.path=$kernel" --set "disks[0].path=$image" ${sets[@]+"${sets[@]}"} \
        --set "kernel.cmdline=txfs=$disk txfs_update=loop" >"$log" 2>&1 &
    pid=$!
    if [ $((RANDOM % 5)) = 0 ]; then
        phase="boot/mount"
        boot_kills=$((boot_kills + 1))
        delay_ms=$((RANDOM % (ready_ms + 1)))
        sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    else
        phase="updating"
        for _ in $(seq 2000); do
            grep -q "^txfs update: starting after version" "$log" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.005
        done
        ready_ms=$(( ($(date +%s%N) - launched_ns) / 1000000 ))
        delay_ms=$((RANDOM % 400))
        sleep "$(printf '0.%03d' "$delay_ms")"
    fi
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
    if grep -qE "txfs.*(FAILED|INCONSISTENT|failed)|panic" "$log"; then violation "$kill_number" "the guest reported a failure"; fi
    started=$(sed -n 's/^txfs update: starting after version \([0-9]*\),.*/\1/p' "$log")
    if [ -n "$started" ] && [ "$started" != "$found" ]; then
        violation "$kill_number" "the guest mounted version $started, the host had found $found"
    fi
    acked=$(sed -n 's/^txfs update: version \([0-9]*\) committed.*/\1/p' "$log" | tail -1)
    run_commits=$(grep -c "^txfs update: version [0-9]* committed" "$log")
    commits_seen=$((commits_seen + run_commits))
    [ -n "$acked" ] || acked=$found
    if ! version=$(image_version "$image"); then violation "$kill_number" "$version"; fi
    if [ "$version" -lt "$acked" ]; then
        violation "$kill_number" "the image holds version $version; the guest acknowledged $acked"
    fi
    [ "$version" -gt $((acked + 1)) ] && lost_acks=$((lost_acks + 1))
    [ "$version" = $((acked + 1)) ] && in_flight=$((in_flight + 1))
    echo "kill $kill_number: $phase, +${delay_ms} ms: $run_commits commit(s) acknowledged, last $acked; image holds version $version whole, fsck clean"
    found=$version
done
elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
echo "summary: $kills kills ($boot_kills during boot/mount), $commits_seen commits acknowledged, final version $found," \
     "$in_flight holding the unacknowledged commit in flight, $lost_acks with unprinted acknowledgements, 0 violations in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000))) s ($((elapsed_ms / kills)) ms per kill), seed $seed"
rm -f "$image"
