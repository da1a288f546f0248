#!/bin/sh
# docker-entrypoint.sh -- how the hookq image starts.
#
#   (no args) | worker | hookq-worker [FLAGS]   validate the config, then run the worker
#   -FLAG ...                                   same, FLAGS passed to hookq-worker
#   api | hookq-api [FLAGS]                     validate the config, then run hookq-api
#                                               (set HOOKQ_API_LISTEN=0.0.0.0:8080 and
#                                               HOOKQ_API_ADMIN_KEYS to reach it)
#   hookq ARGS | CLI-COMMAND ARGS               run the hookq CLI (e.g. `endpoint list`)
#   anything else                               exec it as is (sh, redis-cli, ...)
#
# Configuration comes from HOOKQ_* environment variables (HOOKQ_REDIS_URL, ...) and/or
# the YAML file named by HOOKQ_CONFIG. Before the worker starts, `hookq config check FILE`
# validates them; on a bad value the container exits non-zero with the checker's message,
# which names the variable, instead of crash-looping a worker.
#
# The worker is exec'd, so it gets SIGTERM directly and drains within
# delivery.shutdown_grace. This script defines no HOOKQ_* variables of its own, because
# hookq rejects unknown ones.
set -eu

# The file the worker will read, as cfg_load picks it: $HOOKQ_CONFIG, else ./hookq.yaml,
# else none (an empty file: defaults, then the environment).
config_file() {
    if [ -n "${HOOKQ_CONFIG:-}" ]; then
        printf '%s' "$HOOKQ_CONFIG"
    elif [ -e hookq.yaml ]; then
        printf '%s' hookq.yaml
    else
        printf '%s' /dev/null
    fi
}

# Cross-key checks name the key ("key 'delivery.concurrency': ..."), not where its value
# came from. In a container that is nearly always a variable: name it, but never print its
# value (HOOKQ_REDIS_URL may hold a password).
env_hint() {
    printf '%s\n' "$1" | sed -n "s/.*key '\([a-z_][a-z_.]*\)'.*/\1/p" | sort -u |
        while read -r key; do
            var="HOOKQ_$(printf '%s' "$key" | tr 'a-z.' 'A-Z_')"
            # var is [A-Z_] only, so eval cannot run anything else.
            case "$1" in *"$var"*) continue ;; esac # already named
            if eval "[ -n \"\${$var+x}\" ]"; then
                echo "hookq: '$key' is set by the environment variable $var" >&2
            fi
        done
}

# check_config WHAT: exit with the checker's message when the configuration is bad.
check_config() {
    rc=0
    out=$(hookq config check "$(config_file)" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "hookq: configuration is invalid, not starting the $1:" >&2
        printf '%s\n' "$out" >&2
        env_hint "$out"
        exit "$rc"
    fi
}

run_worker() {
    check_config worker
    exec hookq-worker "$@"
}

for bin in hookq hookq-worker; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "docker-entrypoint: '$bin' not found in PATH ($PATH)" >&2
        exit 127
    fi
done

if [ $# -eq 0 ]; then
    run_worker
fi

case "$1" in
worker | hookq-worker)
    shift
    run_worker "$@"
    ;;
-*)
    run_worker "$@"
    ;;
api | hookq-api)
    shift
    check_config api
    exec hookq-api "$@"
    ;;
hookq)
    shift
    exec hookq "$@"
    ;;
send | endpoint | endpoints | deliveries | delivery | dead | replay | config | stats | \
    status | event | events | inspect | version | help)
    exec hookq "$@"
    ;;
*)
    exec "$@"
    ;;
esac
