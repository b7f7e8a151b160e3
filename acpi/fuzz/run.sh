#!/usr/bin/env bash
# Builds the ACPI parser fuzzer with clang (libFuzzer + ASan + UBSan) and runs it.
#   acpi/fuzz/run.sh [SECONDS] [WORK_DIR]     default: 60 s, build/acpi-fuzz
# Exits 77 (ctest: skipped) if clang++ is missing; the corpus in WORK_DIR/corpus is kept between
# runs, seeded with valid images from the builder.
set -euo pipefail
seconds=${1:-60}
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=${2:-$source_dir/build/acpi-fuzz}
if ! command -v clang++ >/dev/null; then
    echo "SKIPPED: clang++ is not installed (needed for libFuzzer)"
    exit 77
fi
mkdir -p "$work/corpus"
sources=(
    "$source_dir"/acpi/fuzz/fuzz_acpi_parser.cpp "$source_dir"/acpi/host/src/builder.cpp
    "$source_dir"/acpi/src/{parser,madt,srat,slit}.cpp
    "$source_dir"/numa/src/{status,distance,topology,fallback_order}.cpp
    "$source_dir"/guest-kernel/lib/format.cpp)
includes=(-I"$source_dir"/acpi/include -I"$source_dir"/acpi/host/include -I"$source_dir"/numa/include
          -I"$source_dir"/abi/include -I"$source_dir"/guest-kernel)
binary=$work/fuzz_acpi_parser
if [ ! -x "$binary" ] || [ -n "$(find "${sources[@]}" "$source_dir"/acpi/include "$source_dir"/numa/include -newer "$binary" | head -1)" ]; then
    clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        "${includes[@]}" "${sources[@]}" -o "$binary"
fi
HVKVM_FUZZ_WRITE_SEEDS="$work/corpus" "$binary"
"$binary" -max_total_time="$seconds" -max_len=8192 -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus"
