#!/bin/sh
# Build the libFuzzer targets with clang into build-fuzz and run each for N seconds.
#   tests/fuzz/run.sh [seconds-per-target] [target...]     (default 20 s, all targets)
# Findings (crash-*, leak-*, timeout-*) land in build-fuzz/fuzz/artifacts/<target>/.
# New inputs go to build-fuzz/fuzz/corpus/<target>/; the checked-in seeds stay untouched.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-20}
[ $# -gt 0 ] && shift
# Every tests/fuzz/fuzz_NAME.c is a target unless some are named.
all=$(cd "$here" && for f in fuzz_*.c; do printf "%s " "${f%.c}"; done)
targets=${*:-$all}
build=$root/build-fuzz

CC=clang cmake -S "$root" -B "$build" -DHOOKQ_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j2 --target $targets

status=0
for t in $targets; do
    corpus=$build/fuzz/corpus/$t
    artifacts=$build/fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    seeds=$here/corpus/$t
    echo "== $t: ${secs}s"
    if ! "$build/fuzz/$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "$seeds" 2>"$build/fuzz/$t.log"; then
        echo "!! $t found a problem; see $build/fuzz/$t.log and $artifacts/"
        tail -n 40 "$build/fuzz/$t.log"
        status=1
    else
        grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz/$t.log" || true
    fi
done
exit $status
