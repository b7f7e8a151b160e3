#!/usr/bin/env bash
# Runs `vmm` once and checks how it ended. Used by ctest (see CMakeLists.txt here).
#
#   run_vmm.sh VMM [--needs-kvm] [--needs-pvm] [--needs-cpus N] [--status N] [--expect REGEX]... [--reject REGEX]...
#              [--expect-count MIN MAX REGEX]... [--expect-file PATH REGEX]... [--signal SIG AFTER_SECONDS]
#              [--signal-again AFTER_SECONDS] [--kill-root SIG AFTER_SECONDS] -- VMM_ARGS...
#
# --signal-again sends the --signal a second time that long after the first.
#
# --kill-root sends SIG to vmm's root-partition process (hvkvm-root) after the delay.
#
# --expect/--reject match (grep -E) the combined stdout+stderr; --expect-count wants MIN..MAX lines
# matching. Exit status 77 means skipped
# (ctest SKIP_RETURN_CODE): the test needs /dev/kvm (or a PVM host's /dev/kvm) and this machine has
# none usable.
set -u
vmm=$1; shift
needs_kvm=0 needs_pvm=0 needs_cpus=1 status=0 signal="" signal_after=0 signal_again="" kill_root="" kill_root_after=0
expects=() rejects=() file_checks=() counts=()
while [ $# -gt 0 ]; do
    case $1 in
        --needs-kvm) needs_kvm=1; shift ;;
        --needs-pvm) needs_kvm=1; needs_pvm=1; shift ;;
        --needs-cpus) needs_cpus=$2; shift 2 ;;
        --status) status=$2; shift 2 ;;
        --expect) expects+=("$2"); shift 2 ;;
        --reject) rejects+=("$2"); shift 2 ;;
        --expect-file) file_checks+=("$2" "$3"); shift 3 ;;
        --expect-count) counts+=("$2" "$3" "$4"); shift 4 ;;
        --signal) signal=$2; signal_after=$3; shift 3 ;;
        --signal-again) signal_again=$2; shift 2 ;;
        --kill-root) kill_root=$2; kill_root_after=$3; shift 3 ;;
        --) shift; break ;;
        *) echo "run_vmm.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$needs_kvm" = 1 ] && ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
    echo "SKIPPED: this test boots a VM and needs read/write access to /dev/kvm, which this machine lacks"
    exit 77
fi

if [ "$(nproc)" -lt "$needs_cpus" ]; then
    echo "SKIPPED: this test needs $needs_cpus host CPUs and this machine has $(nproc)"
    exit 77
fi

if [ "$needs_pvm" = 1 ] && [ ! -d /sys/module/kvm_pvm ]; then
    echo "SKIPPED: this test checks behaviour specific to PVM hosts (module kvm_pvm), and this host's KVM is not PVM"
    exit 77
fi

output=$(mktemp)
trap 'rm -f "$output"' EXIT
if [ -n "$signal" ]; then
    "$vmm" "$@" >"$output" 2>&1 &
    pid=$!
    sleep "$signal_after"
    kill -s "$signal" "$pid"
    if [ -n "$signal_again" ]; then sleep "$signal_again"; kill -s "$signal" "$pid"; fi
    wait "$pid"
    actual=$?
elif [ -n "$kill_root" ]; then
    "$vmm" "$@" >"$output" 2>&1 &
    pid=$!
    sleep "$kill_root_after"
    root_pid=$(pgrep -P "$pid" -x hvkvm-root)
    if [ -z "$root_pid" ]; then echo "run_vmm.sh: vmm has no hvkvm-root child to kill"; kill -KILL "$pid"; fi
    [ -n "$root_pid" ] && kill -s "$kill_root" "$root_pid"
    wait "$pid"  # ctest's TIMEOUT stops a vmm that never notices
    actual=$?
else
    timeout --signal=KILL 120 "$vmm" "$@" >"$output" 2>&1
    actual=$?
fi

echo "\$ vmm $*"
cat "$output"
echo "--- exit status $actual (expected $status)"
failed=0
if [ "$actual" != "$status" ]; then echo "FAIL: exit status $actual, expected $status"; failed=1; fi
for pattern in ${expects[@]+"${expects[@]}"}; do
    grep -Eq -- "$pattern" "$output" || { echo "FAIL: output lacks /$pattern/"; failed=1; }
done
for pattern in ${rejects[@]+"${rejects[@]}"}; do
    grep -Eq -- "$pattern" "$output" && { echo "FAIL: output contains /$pattern/"; failed=1; }
done
set -- ${counts[@]+"${counts[@]}"}
while [ $# -gt 0 ]; do
    found=$(grep -Ec -- "$3" "$output")
    if [ "$found" -lt "$1" ] || [ "$found" -gt "$2" ]; then
        echo "FAIL: $found lines match /$3/, expected $1..$2"; failed=1
    fi
    shift 3
done
set -- ${file_checks[@]+"${file_checks[@]}"}
while [ $# -gt 0 ]; do
    grep -Eq -- "$2" "$1" 2>/dev/null || { echo "FAIL: file $1 lacks /$2/"; failed=1; }
    shift 2
done
[ "$failed" = 0 ] && echo "PASS"
exit "$failed"
