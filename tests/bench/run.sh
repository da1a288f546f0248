#!/usr/bin/env bash
# hookq benchmark: one command from a fresh clone.
#   tests/bench/run.sh [--quick] [--runs N] [--out FILE.json] [--n EVENTS] [--no-aof]
#                      [--only KEY,...] [--bin DIR] [--plots | --no-plots] [--plots-dir DIR]
# Builds hookq (cmake --build build), compiles the bench tools into a temp dir, then runs
# tests/bench/bench.py, which starts its own redis-server, nginx and receivers on
# 127.0.0.1 and prints the table (docs/performance.md explains it). A full run also
# redraws docs/bench/*.png (gnuplot-nox; skipped with a message without it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
cd "$src"
for tool in redis-server nginx wrk node cc; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (see docs/performance.md)" >&2; exit 2; }
done
# --bin DIR: use hookq-worker from DIR as it is (no build here).
case " $* " in
*" --bin "*) ;;
*)
    if [ ! -f build/CMakeCache.txt ]; then
        cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build build -j2 --target hookq-worker >/dev/null
    # the CLI: retry_latency times `hookq retry`
    cmake --build build -j2 --target hookq >/dev/null
    cmake --build build -j2 --target hookq-api >/dev/null
    # only compared with wrk; needs libmicrohttpd
    cmake --build build -j2 --target hq-receiver >/dev/null 2>&1 || true
    ;;
esac
tools="$(mktemp -d "${TMPDIR:-/tmp}/hookq-bench-tools.XXXXXX")"
trap 'rm -rf "$tools"' EXIT
cc -O2 -Wall -o "$tools/hqb-recv" "$here/hqb-recv.c" -lpthread
cc -O2 -Wall -o "$tools/hqb-load" "$here/hqb-load.c" -lhiredis
# The peers live beside the repository (../shared/peers); HOOKQ_BENCH_PEERS overrides.
peers="${HOOKQ_BENCH_PEERS:-}"
if [ -z "$peers" ]; then
    for d in "$src/../shared/peers" "$src/../../shared/peers" /work/shared/peers; do
        [ -d "$d/bullmq" ] && { peers="$(cd "$d" && pwd)"; break; }
    done
fi
[ -n "$peers" ] || { echo "run.sh: peers not found; set HOOKQ_BENCH_PEERS" >&2; exit 2; }
cc -O2 -o "$tools/curl-ceiling" "$peers/curl-ceiling/curl-ceiling.c" -lcurl
# 1,000 connections in flight need more descriptors than the usual soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export PYTHONDONTWRITEBYTECODE=1
# Bound the whole thing: a full run takes a few minutes per --runs.
timeout --signal=TERM --kill-after=30 3600 python3 "$here/bench.py" --tools "$tools" --peers "$peers" "$@"
