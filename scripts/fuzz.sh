#!/bin/bash
# fuzz.sh: build the libFuzzer targets (clang, ASan+UBSan) and run each for a while.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every tests/fuzz/fuzz_*.c)
# Each target runs on a scratch copy of its committed corpus, so the repository never changes by
# itself; new inputs worth keeping are listed at the end (copy them into tests/fuzz/corpus/ by
# hand). A crash stops with the reproducer's path: turn it into a regression input named after
# what it found.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
build=${BUILD:-build}/fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DXTP_FUZZ=ON -DXTP_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/$t-crash"
    cp -r "tests/fuzz/corpus/$t/." "$work/$t/"
    before=$(ls "$work/$t" | wc -l)
    echo "== $t: ${secs}s"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    if ! "$build/$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/$t-crash/" \
        "${dict[@]}" "$work/$t" 2>"$work/$t.log"; then
        tail -n 40 "$work/$t.log"
        mkdir -p build/fuzz-crashes && cp "$work/$t-crash/"* build/fuzz-crashes/ 2>/dev/null || true
        echo "== $t: CRASH; reproducers copied to build/fuzz-crashes/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|cov: ' \
        "$work/$t.log" | tail -n 4
    echo "== $t: corpus $before -> $(ls "$work/$t" | wc -l) inputs"
done
