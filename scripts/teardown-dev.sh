#!/usr/bin/env bash
# Stop what scripts/setup-dev.sh started — and nothing else. An engine or registry that was
# already running when setup ran is not in the record and is left alone. Packages, the base
# image and the registry's data stay, so the next setup is a warm one.
#
#   scripts/teardown-dev.sh           stop the recorded dockerd and registry
#   scripts/teardown-dev.sh --purge   also remove the registry data and credentials file
set -euo pipefail

STATE_DIR="${PACK_DEV_STATE:-/var/lib/pack-dev}"
STARTED_FILE="$STATE_DIR/started"
say() { printf '[teardown-dev] %s\n' "$*"; }

purge=0
mkdir -p "$STATE_DIR"
exec 9>"$STATE_DIR/setup.lock"  # not while a setup is running
flock 9
[ "${1:-}" = "--purge" ] && purge=1

# stop PID PATTERN: only when the process still is the one setup started (pids get reused).
stop() {
    local kind=$1 pid=$2 pattern=$3
    if ! kill -0 "$pid" 2>/dev/null; then
        say "$kind (pid $pid) already gone"
        return 0
    fi
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
        say "$kind: pid $pid is no longer $pattern; leaving it alone"
        return 0
    fi
    kill -TERM "$pid"
    # dockerd stops its containers and its managed containerd first; give it time.
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { say "$kind (pid $pid) stopped"; return 0; }
        sleep 0.5
    done
    say "$kind (pid $pid) did not stop in 30s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
}

if [ ! -s "$STARTED_FILE" ]; then
    say "nothing recorded in $STARTED_FILE; nothing to stop"
else
    # Registry first: it does not depend on the engine, and stopping dockerd last lets
    # containers end cleanly.
    for kind in registry dockerd; do
        line=$(grep "^$kind " "$STARTED_FILE" || true)
        [ -n "$line" ] || continue
        read -r _ pid pattern <<<"$line"
        stop "$kind" "$pid" "$pattern"
    done
    : >"$STARTED_FILE"
fi

if [ "$purge" = 1 ]; then
    rm -rf "$STATE_DIR/registry" "$STATE_DIR/registry.env"
    say "purged registry data and $STATE_DIR/registry.env"
fi
