#!/usr/bin/env bash
# deploy/quickstart.sh -- see hookq deliver signed webhooks, end to end, on this machine.
#
#   deploy/quickstart.sh [--no-install]
#
# 1. installs missing Debian packages (as root or through sudo) and builds hookq;
# 2. uses $HOOKQ_REDIS_URL if a Redis answers there, else starts a throwaway
#    redis-server on a free loopback port;
# 3. starts a receiver that verifies signatures (build/bin/hq-receiver) and a worker;
# 4. registers an endpoint for 'task:*', sends 3 events, waits for their delivery,
#    and shows the delivery log with `hookq deliveries` and with plain redis-cli;
# 5. starts hookq-api with a fresh admin key, registers a second endpoint and publishes
#    an event with curl, and shows the event's delivery through GET /v1/events/{id}.
# Everything it started is stopped on exit; nothing listens beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$ROOT/deploy/deps.sh"

install=1
for a in "$@"; do
    case "$a" in
    --no-install) install=0 ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "quickstart: unknown option '$a'" >&2
        exit 2
        ;;
    esac
done

BUILD=${QUICKSTART_BUILD_DIR:-$ROOT/build}
BIN=$BUILD/bin
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-quickstart.XXXXXX")
redis_pid=""
receiver_pid=""
worker_pid=""
api_pid=""
external_redis=0
EP=""
EP2=""

step() {
    printf '\n\033[1m==> %s\033[0m\n' "$*"
}

die() {
    echo "quickstart: $*" >&2
    exit 1
}

# Stop what we started, most dependent first: the worker drains on SIGTERM, the
# receiver prints its totals, our redis-server goes last.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # In a Redis we did not start, leave no endpoint behind pointing at a dead port.
    if [ "$external_redis" = 1 ]; then
        for e in $EP $EP2; do
            "$BIN/hookq" endpoint rm "$e" >/dev/null 2>&1 || true
        done
    fi
    stop_pid "$api_pid" hookq-api
    stop_pid "$worker_pid" worker
    stop_pid "$receiver_pid" receiver
    if [ -n "$receiver_pid" ] && [ -s "$TMP/receiver.err" ]; then
        sed 's/^/    /' "$TMP/receiver.err"
    fi
    stop_pid "$redis_pid" redis-server
    if [ "$rc" != 0 ]; then
        for f in worker.log api.log redis.log; do
            if [ -s "$TMP/$f" ]; then
                echo "--- last lines of $f" >&2
                tail -n 20 "$TMP/$f" >&2
            fi
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() {
    local pid=$1 name=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do # up to 15 s: the worker's default shutdown grace is 10 s
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "quickstart: $name did not stop, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# wait_for SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
    local secs=$1 i
    shift
    for i in $(seq 1 $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis_ping() {
    [ "$(redis-cli -u "$1" PING 2>/dev/null)" = PONG ]
}

if [ "$install" = 1 ]; then
    step "Checking packages"
    hq_deps_install || die "could not install the packages hookq needs"
fi

step "Building hookq"
# An existing build dir keeps its settings (cmake --build re-configures when needed).
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" >/dev/null
fi
# Only what the demo runs: the test suite is tests/run.sh's job.
cmake --build "$BUILD" -j "${HOOKQ_JOBS:-2}" --target hookq hookq-worker hookq-api hq-receiver \
    >"$TMP/build.log" 2>&1 || {
    cat "$TMP/build.log" >&2
    die "build failed"
}
for b in hookq hookq-worker hookq-api hq-receiver; do
    [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done
echo "binaries in $BIN"

step "Redis"
if [ -n "${HOOKQ_REDIS_URL:-}" ] && redis_ping "$HOOKQ_REDIS_URL"; then
    external_redis=1
    # Keep our demo keys apart from anything else in that Redis.
    export HOOKQ_REDIS_PREFIX=${HOOKQ_REDIS_PREFIX:-hookq-quickstart}
    echo "using the Redis at \$HOOKQ_REDIS_URL (key prefix $HOOKQ_REDIS_PREFIX)"
else
    [ -n "${HOOKQ_REDIS_URL:-}" ] && echo "no Redis answers at \$HOOKQ_REDIS_URL; starting one"
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly no \
        --daemonize no --logfile "$TMP/redis.log" &
    redis_pid=$!
    export HOOKQ_REDIS_URL="redis://127.0.0.1:$port/0"
    wait_for 10 redis_ping "$HOOKQ_REDIS_URL" || die "redis-server did not start"
    echo "started redis-server on 127.0.0.1:$port (data in a temp dir, removed on exit)"
fi
PREFIX=${HOOKQ_REDIS_PREFIX:-hookq}

step "Receiver"
SECRET="whsec_$(openssl rand -base64 32)"
"$BIN/hq-receiver" --port 0 --print --secret "$SECRET" >"$TMP/receiver.out" \
    2>"$TMP/receiver.err" &
receiver_pid=$!
wait_for 10 grep -q 'listening on' "$TMP/receiver.out" || die "hq-receiver did not start"
rport=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$TMP/receiver.out" | head -n 1)
[ -n "$rport" ] || die "cannot read the receiver's port"
URL="http://127.0.0.1:$rport/hook"
echo "hq-receiver on $URL verifies every signature (401 if it does not match)"

step "Worker"
# Allowed only because this demo's receiver is on loopback: by default hookq refuses to
# deliver to private and loopback addresses.
HOOKQ_SECURITY_ALLOW_PRIVATE_NETWORKS=true "$BIN/hookq-worker" >"$TMP/worker.log" 2>&1 &
worker_pid=$!
sleep 0.5
kill -0 "$worker_pid" 2>/dev/null || die "hookq-worker exited at start"
echo "hookq-worker running (pid $worker_pid)"

step "hookq endpoint add --url $URL --events 'task:*' --secret whsec_..."
out=$("$BIN/hookq" endpoint add --url "$URL" --events 'task:*' --secret "$SECRET") ||
    die "endpoint add failed: $out"
# `endpoint add` prints the endpoint as JSON (the only time it shows the secret).
printf '%s\n' "$out" | sed "s|$SECRET|whsec_(the secret the receiver knows)|g"
EP=$(printf '%s\n' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' \
    2>/dev/null) || EP=$(printf '%s\n' "$out" | grep -o 'ep_[A-Za-z0-9_-]*' | head -n 1)
[ -n "$EP" ] || die "cannot find the endpoint id in: $out"

# No wait needed: the worker's fanout checks the endpoints version in the same Lua
# script that creates the jobs, so an endpoint added before an event always receives it.

step "Sending 3 events"
for i in 1 2 3; do
    data="{\"task\":$i,\"state\":\"done\"}"
    echo "\$ hookq send task:done '$data'"
    "$BIN/hookq" send task:done "$data"
done

step "Waiting for delivery"
delivered() {
    [ "$(grep -c 'sig=ok status=2' "$TMP/receiver.out" 2>/dev/null)" -ge 3 ]
}
if ! wait_for 30 delivered; then
    cat "$TMP/receiver.out"
    die "the 3 events were not delivered within 30 s"
fi
echo "the receiver got (and verified) these requests:"
grep -v 'listening on' "$TMP/receiver.out" | sed 's/^/    /'

step "hookq deliveries $EP"
"$BIN/hookq" deliveries "$EP"

step "redis-cli XREVRANGE '$PREFIX:{$EP}:log' + - COUNT 10"
redis-cli --no-raw -u "$HOOKQ_REDIS_URL" XREVRANGE "$PREFIX:{$EP}:log" + - COUNT 10

step "hookq-api: the same, over HTTP"
KEY=$(openssl rand -hex 24)
aport=$(free_port)
HOOKQ_API_LISTEN="127.0.0.1:$aport" HOOKQ_API_ADMIN_KEYS="$KEY" "$BIN/hookq-api" \
    >"$TMP/api.out" 2>"$TMP/api.log" &
api_pid=$!
API="http://127.0.0.1:$aport"
wait_for 10 curl -fsS "$API/v1/health" || die "hookq-api did not start"
echo "hookq-api on $API (admin key in \$KEY, from api.admin_keys)"

echo "\$ curl -X POST $API/v1/endpoints -H \"Authorization: Bearer \$KEY\" \\"
echo "    -d '{\"url\":\"$URL\",\"events\":[\"order.*\"],\"secret\":\"whsec_...\"}'"
out=$(curl -sS -X POST "$API/v1/endpoints" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d "{\"url\":\"$URL\",\"events\":[\"order.*\"],\"secret\":\"$SECRET\"}") ||
    die "POST /v1/endpoints failed"
printf '%s\n' "$out" | sed "s|$SECRET|whsec_(the secret the receiver knows)|g"
EP2=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
    die "no endpoint id in: $out"

echo "\$ curl -X POST $API/v1/events -H \"Authorization: Bearer \$KEY\" \\"
echo "    -d '{\"type\":\"order.paid\",\"data\":{\"order\":7}}'"
out=$(curl -sS -X POST "$API/v1/events" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"type":"order.paid","data":{"order":7}}') ||
    die "POST /v1/events failed"
echo "$out"
EVT=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])') ||
    die "no event id in: $out"
delivered_api() {
    [ "$(grep -c 'sig=ok status=2' "$TMP/receiver.out" 2>/dev/null)" -ge 4 ]
}
wait_for 30 delivered_api || die "the API's event was not delivered within 30 s"
echo "the receiver got (and verified):"
grep 'order.paid' "$TMP/receiver.out" | sed 's/^/    /'
attempted() {
    curl -fsS "$API/v1/events/$EVT" -H "Authorization: Bearer $KEY" | grep -q '"delivered"'
}
wait_for 10 attempted || true
echo "\$ curl $API/v1/events/$EVT -H \"Authorization: Bearer \$KEY\""
curl -sS "$API/v1/events/$EVT" -H "Authorization: Bearer $KEY" |
    python3 -m json.tool 2>/dev/null || die "GET /v1/events/$EVT failed"

if [ "$external_redis" = 1 ]; then
    echo
    echo "the demo endpoints are removed on exit; other demo keys stay under '$PREFIX:'"
fi
step "Done: stopping everything this script started"
