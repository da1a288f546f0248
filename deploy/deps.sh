# deps.sh -- sourced by tests/run.sh and deploy/quickstart.sh.
#
# Installs the Debian packages hookq needs to build, test and run on a fresh Debian 12
# machine, and the npm packages of tests/tools. Both callers must work on a machine where
# nothing was installed by hand, so the package list lives here, once.
#
# Functions (all print to stderr, return non-zero on failure):
#   hq_deps_install       apt-get install whatever of HQ_DEPS_PACKAGES is missing
#   hq_deps_npm DIR       npm install in DIR when its node_modules lack a dependency
#   hq_stop_services      stop redis-server / nginx services that apt may have started

HQ_DEPS_PACKAGES="build-essential cmake pkg-config libhiredis-dev libcurl4-openssl-dev
libjansson-dev libyaml-dev libssl-dev libmicrohttpd-dev libcmocka-dev redis-server redis-tools
python3 openssl curl clang clang-format libclang-rt-14-dev valgrind wrk nginx-light gnuplot-nox git"

hq_log() {
    printf '%s\n' "[deps] $*" >&2
}

# Run a command as root: directly when we are root (CI), through sudo otherwise.
hq_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        hq_log "need root to run: $*  (not root and no sudo)"
        return 1
    fi
}

hq_pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

hq_deps_missing() {
    local p missing=""
    for p in $HQ_DEPS_PACKAGES; do
        hq_pkg_installed "$p" || missing="$missing $p"
    done
    # Node 20 comes preinstalled on our machines (not from Debian); only fall back to
    # Debian's nodejs + npm when there is no node at all, so we never fight that install.
    if ! command -v node >/dev/null 2>&1; then
        hq_pkg_installed nodejs || missing="$missing nodejs"
        hq_pkg_installed npm || missing="$missing npm"
    fi
    printf '%s' "${missing# }"
}

hq_deps_install() {
    local missing
    if ! command -v dpkg-query >/dev/null 2>&1; then
        hq_log "dpkg-query not found: not a Debian system; install the packages by hand:"
        hq_log "  $(echo $HQ_DEPS_PACKAGES)"
        return 1
    fi
    missing=$(hq_deps_missing)
    if [ -z "$missing" ]; then
        return 0
    fi
    hq_log "installing: $missing"
    # Keep package scripts from starting services (redis-server on 6379, nginx on 80):
    # tests start their own servers on free ports. policy-rc.d exit 101 = "not allowed".
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        if hq_as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"; then
            created_policy=1
        fi
    fi
    local rc=0
    hq_as_root apt-get update || rc=$?
    if [ "$rc" = 0 ]; then
        # shellcheck disable=SC2086 # word splitting of the package list is intended
        hq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends $missing || rc=$?
    fi
    if [ "$created_policy" = 1 ]; then
        hq_as_root rm -f "$policy"
    fi
    hq_stop_services
    if [ "$rc" != 0 ]; then
        hq_log "apt-get failed (exit $rc)"
        return "$rc"
    fi
    missing=$(hq_deps_missing)
    if [ -n "$missing" ]; then
        hq_log "still missing after install: $missing"
        return 1
    fi
    return 0
}

# Stop and disable the distribution's redis-server and nginx services if they run: a
# redis on 6379 would hide bugs in tests that must use their own server.
hq_stop_services() {
    local svc
    for svc in redis-server nginx; do
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            if systemctl is-active --quiet "$svc" 2>/dev/null; then
                hq_log "stopping service $svc"
                hq_as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
            fi
        elif [ -x "/etc/init.d/$svc" ]; then
            if hq_as_root "/etc/init.d/$svc" status >/dev/null 2>&1; then
                hq_log "stopping service $svc"
                hq_as_root "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            fi
        fi
    done
}

# npm install in DIR (tests/tools) unless every dependency in its package.json is already
# in node_modules. Returns non-zero when node/npm are missing or the install failed.
hq_deps_npm() {
    local dir=$1
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        hq_log "node/npm not found: cannot install $dir/package.json dependencies"
        return 1
    fi
    if (cd "$dir" && node -e '
        const fs = require("fs");
        const deps = Object.keys(require("./package.json").dependencies || {});
        for (const d of deps) fs.accessSync("node_modules/" + d + "/package.json");
    ' >/dev/null 2>&1); then
        return 0
    fi
    hq_log "npm install in $dir"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
}
