#!/usr/bin/env bash
# tests/run.sh -- build hookq and run its tests. Works on a fresh Debian 12 machine: missing
# packages are installed first (as root, or through sudo).
#
#   tests/run.sh                 install deps, build (build/), run every CTest label
#   tests/run.sh --unit          only the "unit" label
#   tests/run.sh --sanitize      build in build-asan/ with ASan+UBSan, any report is fatal
#                                (every label but "slow": the long suites run once, natively)
#   tests/run.sh --valgrind      unit tests, then (unless --unit) the VG_INTEGRATION
#                                integration tests, under valgrind
#   tests/run.sh --fuzz SECONDS  run tests/fuzz/run.sh SECONDS (if present)
#   tests/run.sh --no-install    do not install packages (apt, npm)
#
# Several of --sanitize/--valgrind/--fuzz may be given; each runs in turn. Exit status is
# non-zero if any build or test failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../deploy/deps.sh
. "$ROOT/deploy/deps.sh"

JOBS=${HOOKQ_JOBS:-2}

# Integration tests run under valgrind by --valgrind (HOOKQ_VALGRIND=1: the harness wraps
# hookq and hookq-worker, and fails a test on any valgrind error or definite leak). These
# cover the CLI and every worker path in ~4 min on 2 cores. Left out:
#   test_security_hostile  asserts the worker's RSS stays bounded; under valgrind RSS is
#                          valgrind's own (~75 MB), so the assertion measures the tool
#   test_slow_*            minutes each even natively (thousands of deliveries, outages)
#   test_deploy            runs the binaries through the container entrypoint script and
#                          hq-receiver, not through the harness's wrapper
VG_INTEGRATION='test_cli_(dead|endpoint|ops|send|worker|exit_codes|replay_trimmed|policies)|test_policy_hold|test_worker_(claims|deliver|disable|disable_fleet|fail_batch|full|ops|outage|promote|reference|retry|job_ids|not_http|endpoint_removed|endpoint_hash_compat)|test_security_(secrets|ssrf)|test_poison|test_scripts_ownership|test_api_[a-z_]*'
unit_only=0
sanitize=0
valgrind=0
fuzz_seconds=""
install=1

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --unit) unit_only=1 ;;
    --sanitize) sanitize=1 ;;
    --valgrind) valgrind=1 ;;
    --fuzz)
        if [ $# -lt 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
            echo "run.sh: --fuzz needs a number of seconds" >&2
            exit 2
        fi
        fuzz_seconds=$2
        shift
        ;;
    --no-install) install=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "run.sh: unknown option '$1'" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

say() {
    printf '\n==> %s\n' "$*"
}

if [ "$install" = 1 ]; then
    say "checking packages"
    hq_deps_install
    hq_stop_services
    # The integration tests compare our signatures with the standardwebhooks reference
    # library. A failed install is not fatal here: those tests then fail loudly.
    if ! hq_deps_npm "$ROOT/tests/tools"; then
        echo "WARNING: npm install in tests/tools failed; tests that use the" \
            "standardwebhooks reference library (tests/tools/sw-verify.mjs) will FAIL" >&2
    fi
fi

status=0
ctest_label=()
if [ "$unit_only" = 1 ]; then
    ctest_label=(-L unit)
fi

build() {
    local dir=$1
    shift
    say "configure $dir"
    cmake -S "$ROOT" -B "$dir" -DHOOKQ_WERROR=ON "$@"
    say "build $dir"
    # Keep going past a broken target, so the tests of everything else still run and
    # one CI log shows every failure; the build failure itself still fails the run.
    if ! cmake --build "$dir" -j "$JOBS" -- -k; then
        echo "run.sh: BUILD FAILED in $dir (tests of targets that did build still run)" >&2
        status=1
    fi
}

run_default=1

if [ "$sanitize" = 1 ]; then
    run_default=0
    build "$ROOT/build-asan" -DHOOKQ_SANITIZE=ON
    say "tests under ASan+UBSan"
    # Every report is fatal: ASan aborts on the first error, LeakSanitizer turns leaks
    # into a non-zero exit, UBSan halts (the build also uses -fno-sanitize-recover).
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1" \
        UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
        LSAN_OPTIONS="exitcode=23" \
        ctest --test-dir "$ROOT/build-asan" --output-on-failure --no-tests=error -j "$JOBS" "${ctest_label[@]}" \
            -LE slow || status=1
fi

if [ "$valgrind" = 1 ]; then
    run_default=0
    build "$ROOT/build"
    say "unit tests under valgrind"
    # The unit programs CTest knows (tests/unit/test_*.c): a binary left in build/tests
    # by a test that was renamed or removed is not one of them.
    tests=()
    for src in "$ROOT"/tests/unit/test_*.c; do
        tests+=("$ROOT/build/tests/$(basename "$src" .c)")
    done
    if [ ${#tests[@]} = 0 ]; then
        echo "run.sh: no unit test binaries in build/tests" >&2
        status=1
    fi
    vg_pass=0
    vg_fail=0
    for t in "${tests[@]}"; do
        [ -x "$t" ] || continue
        echo "--- valgrind $(basename "$t")"
        if valgrind --quiet --error-exitcode=1 --leak-check=full \
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
            --track-origins=yes "$t"; then
            vg_pass=$((vg_pass + 1))
        else
            echo "FAILED under valgrind: $(basename "$t")" >&2
            vg_fail=$((vg_fail + 1))
            status=1
        fi
    done
    echo "valgrind: $vg_pass passed, $vg_fail failed"
    if [ "$unit_only" = 0 ]; then
        say "integration tests under valgrind"
        HOOKQ_VALGRIND=1 ctest --test-dir "$ROOT/build" --output-on-failure --no-tests=error \
            -j "$JOBS" -L integration -R "^integration/($VG_INTEGRATION)\$" || status=1
    fi
fi

if [ -n "$fuzz_seconds" ]; then
    run_default=0
    if [ -x "$ROOT/tests/fuzz/run.sh" ] || [ -f "$ROOT/tests/fuzz/run.sh" ]; then
        say "fuzzing ${fuzz_seconds}s per target"
        bash "$ROOT/tests/fuzz/run.sh" "$fuzz_seconds" || status=1
    else
        echo "run.sh: tests/fuzz/run.sh not present; nothing to fuzz"
    fi
fi

if [ "$run_default" = 1 ]; then
    build "$ROOT/build"
    say "tests"
    ctest --test-dir "$ROOT/build" --output-on-failure --no-tests=error -j "$JOBS" "${ctest_label[@]}" ||
        status=1
fi

if [ "$status" != 0 ]; then
    say "FAILED"
else
    say "OK"
fi
exit "$status"
