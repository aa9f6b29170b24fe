#!/usr/bin/env bash
# Prepare a Debian machine (as root) for pack's Docker-backed tests and demos:
#   1. apt packages: docker.io, debootstrap, docker-registry, apache2-utils, podman, catatonit
#      (only the missing ones)
#   2. a Docker engine (dockerd on the host network only) when none answers
#   3. the offline base image pack-base:bookworm-py311 when it is missing
#   4. a local registry on 127.0.0.1:5000 with htpasswd auth when none answers
#   5. podman's settings for this machine (host network, rlimits it may set), rewritten only
#      when they differ: `podman kube play` runs rendered Kubernetes manifests in the e2e tests
#
# Idempotent: each step checks first and does nothing when its result is already there, so a
# warm run takes a second or two. What this script starts is written to $PACK_DEV_STATE/started
# and scripts/teardown-dev.sh stops exactly that, never an engine or registry found running.
#
# Environment knobs:
#   PACK_DEV_STATE     state dir (default /var/lib/pack-dev)
#   PACK_BASE_IMAGE    base image tag (default pack-base:bookworm-py311)
#   PACK_CA_BUNDLE     CA bundle baked into the base image (default the host's system bundle)
#   PACK_DEV_REGISTRY_PORT   registry port on 127.0.0.1 (default 5000)
#   DEBIAN_MIRROR      mirror for debootstrap (default: the host's first deb.debian.org-style URI)
set -euo pipefail

STATE_DIR="${PACK_DEV_STATE:-/var/lib/pack-dev}"
STARTED_FILE="$STATE_DIR/started"
BASE_IMAGE="${PACK_BASE_IMAGE:-pack-base:bookworm-py311}"
CA_BUNDLE="${PACK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
REGISTRY_PORT="${PACK_DEV_REGISTRY_PORT:-5000}"
REGISTRY_ADDR="127.0.0.1:$REGISTRY_PORT"
REGISTRY_USER="pack"
REGISTRY_PASSWORD="pack-test-password"
REGISTRY_DIR="$STATE_DIR/registry"
REGISTRY_ENV="$STATE_DIR/registry.env"
DOCKERD_LOG="/var/log/pack-dockerd.log"
REGISTRY_LOG="/var/log/pack-registry.log"
# Bump when the base image recipe below changes: an image with another recipe is rebuilt.
BASE_RECIPE=2
# Debian's own client: it builds with BuildKit under DOCKER_BUILDKIT=1 without a buildx plugin.
DEBIAN_DOCKER=/usr/bin/docker

T0=$EPOCHREALTIME
say() { printf '[setup-dev] %s\n' "$*"; }
die() { printf '[setup-dev] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts dockerd)"
mkdir -p "$STATE_DIR"
# One setup at a time: two parallel runs (CI jobs, several terminals) must not both start dockerd.
exec 9>"$STATE_DIR/setup.lock"
flock 9
touch "$STARTED_FILE"
# Forget records of processes that are gone (a reboot, a crash), so teardown never acts on a
# recycled pid.
while read -r kind pid pattern; do
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"; then
        printf '%s %s %s\n' "$kind" "$pid" "$pattern"
    fi
done <"$STARTED_FILE" >"$STARTED_FILE.tmp" || true
mv "$STARTED_FILE.tmp" "$STARTED_FILE"

# The client used for checks: any docker CLI talks to the daemon API; prefer Debian's.
docker_cli_path() { if [ -x "$DEBIAN_DOCKER" ]; then echo "$DEBIAN_DOCKER"; else command -v docker; fi; }
docker_cli() { "$(docker_cli_path)" "$@"; }

record_started() {  # record_started KIND PID CMD-PATTERN — teardown checks the pattern against /proc
    grep -v "^$1 " "$STARTED_FILE" >"$STARTED_FILE.tmp" || true
    printf '%s %s %s\n' "$1" "$2" "$3" >>"$STARTED_FILE.tmp"
    mv "$STARTED_FILE.tmp" "$STARTED_FILE"
}

# --- 1. packages ------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
# podman: daemonless, nothing to start; catatonit: the init of the pause image that podman
# builds locally for a pod's infra container (nothing can be pulled here).
for pkg in docker.io debootstrap docker-registry apache2-utils podman catatonit; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    # Package postinst scripts would start dockerd and the registry with Debian's defaults
    # (a docker0 bridge on 172.17/16, a registry on :5000 without auth). A policy-rc.d that
    # refuses service starts keeps them down; we start both ourselves with the right flags.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
    say "packages installed ($(elapsed))"
else
    say "packages: docker.io, debootstrap, docker-registry, apache2-utils, podman, catatonit already installed"
fi

# --- 2. engine --------------------------------------------------------------------------------
engine_answers() { timeout 10 "$(docker_cli_path)" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if engine_answers; then
    say "engine: Docker $(docker_cli version --format '{{.Server.Version}}') already answers"
else
    if [ -n "${DOCKER_HOST:-}" ]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer; unset it to use a local dockerd"
    fi
    say "engine: starting dockerd (host network only, log $DOCKERD_LOG)"
    # --bridge=none and no iptables: this machine forbids bridge networks and private ranges,
    # so every build and container uses --network host.
    # 9>&-: the daemon must not inherit the setup lock, or the next setup would wait forever.
    setsid /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false \
        >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    for _ in $(seq 1 60); do
        engine_answers && break
        kill -0 $! 2>/dev/null || die "dockerd exited at start; see $DOCKERD_LOG"
        sleep 0.5
    done
    engine_answers || die "dockerd did not answer within 30s; see $DOCKERD_LOG"
    # dockerd writes its own pid file; prefer it over $! in case setsid forked.
    pid=$(cat /var/run/docker.pid 2>/dev/null || echo $!)
    record_started dockerd "$pid" dockerd
    say "engine: Docker $(docker_cli version --format '{{.Server.Version}}') started, pid $pid ($(elapsed))"
fi
# What pack's engine detection will find (it asks every docker CLI on PATH the same questions).
if docker buildx version >/dev/null 2>&1; then
    say "engine: BuildKit available through $(command -v docker) buildx"
elif DOCKER_BUILDKIT=1 "$DEBIAN_DOCKER" build --help 2>/dev/null | grep -q -- '--secret'; then
    say "engine: BuildKit available through $DEBIAN_DOCKER with DOCKER_BUILDKIT=1"
else
    say "warning: no BuildKit client found; builds fall back to the classic builder (no secret or cache mounts)"
fi

# --- 3. base image ----------------------------------------------------------------------------
# The host's pip settings that reach a package index over the network (not file:// or local
# find-links, which do not exist inside an image). On this kind of machine the index is the
# default PyPI and only the CA matters, so the result is usually empty.
host_pip_index_conf() {
    local idx extra trusted
    idx=$(python3 -m pip config get global.index-url 2>/dev/null || true)
    idx=${PIP_INDEX_URL:-$idx}
    extra=$(python3 -m pip config get global.extra-index-url 2>/dev/null || true)
    extra=${PIP_EXTRA_INDEX_URL:-$extra}
    trusted=$(python3 -m pip config get global.trusted-host 2>/dev/null || true)
    trusted=${PIP_TRUSTED_HOST:-$trusted}
    extra=$(printf '%s\n' $extra | grep -E '^https?://' | tr '\n' ' ' || true)
    case "$idx" in http://*|https://*) ;; *) idx="" ;; esac
    [ -z "$idx$extra" ] && return 0
    printf '[global]\n'
    [ -n "$idx" ] && printf 'index-url = %s\n' "$idx"
    [ -n "${extra// /}" ] && printf 'extra-index-url = %s\n' "$extra"
    [ -n "$trusted" ] && printf 'trusted-host = %s\n' "$trusted"
    return 0
}

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
    [ -z "$uri" ] && uri=$(grep -hE '^deb .*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
    echo "${uri:-http://deb.debian.org/debian}"
}

have_recipe=$(docker_cli image inspect -f '{{ index .Config.Labels "pack.base-recipe" }}' "$BASE_IMAGE" 2>/dev/null || true)
if [ "$have_recipe" = "$BASE_RECIPE" ]; then
    say "base image: $BASE_IMAGE already present"
else
    if [ -n "$have_recipe" ] || docker_cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        say "base image: $BASE_IMAGE has recipe '${have_recipe:-none}', want $BASE_RECIPE; rebuilding"
    fi
    [ -r "$CA_BUNDLE" ] || die "CA bundle $CA_BUNDLE not readable (set PACK_CA_BUNDLE)"
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/pack-base-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    say "base image: debootstrap bookworm from $mirror (about a minute)"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates,curl \
        bookworm "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $STATE_DIR/debootstrap.log"
    # The host's bundle carries the CA of the TLS-intercepting proxy in front of the package
    # registries. It replaces the image's bundle and also sits in the local CA dir, so a later
    # update-ca-certificates in a derived image keeps it.
    install -m 0644 "$CA_BUNDLE" "$rootfs/usr/local/share/ca-certificates/pack-host-ca-bundle.crt"
    install -m 0644 "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    # Like the python:3.x images Truss bases on: pip/uv may install into the system Python.
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    pip_conf=$(host_pip_index_conf)
    if [ -n "$pip_conf" ]; then
        printf '%s\n' "$pip_conf" >"$rootfs/etc/pip.conf"
        say "base image: carrying the host's pip index settings into /etc/pip.conf"
    fi
    # Trim what a server image never needs (apt lists come back with apt-get update).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    ca=/etc/ssl/certs/ca-certificates.crt
    tar -C "$rootfs" -c . | docker_cli import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change "ENV PIP_CERT=$ca" \
        --change "ENV SSL_CERT_FILE=$ca" \
        --change "ENV REQUESTS_CA_BUNDLE=$ca" \
        --change "ENV CURL_CA_BUNDLE=$ca" \
        --change "ENV PIP_DISABLE_PIP_VERSION_CHECK=1" \
        --change "ENV PIP_ROOT_USER_ACTION=ignore" \
        --change "LABEL pack.base-recipe=$BASE_RECIPE" \
        --change 'CMD ["python3"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    # Prove pip inside the image reaches the index through the proxy before anyone builds on it.
    if docker_cli run --rm --network host "$BASE_IMAGE" \
        python3 -m pip download --no-deps --quiet -d /tmp/probe six >/dev/null 2>"$STATE_DIR/pip-probe.log"; then
        say "base image: $BASE_IMAGE built; pip inside reaches the index ($(elapsed))"
    else
        say "warning: $BASE_IMAGE built but pip inside cannot reach the index; see $STATE_DIR/pip-probe.log"
    fi
fi

# --- 4. registry ------------------------------------------------------------------------------
registry_status() { curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$REGISTRY_ADDR/v2/" || true; }
write_registry_env() {
    cat >"$REGISTRY_ENV" <<EOF
# Written by scripts/setup-dev.sh; read by tests/fixtures/docker_env.py.
PACK_TEST_REGISTRY=$REGISTRY_ADDR
PACK_TEST_REGISTRY_USERNAME=$REGISTRY_USER
PACK_TEST_REGISTRY_PASSWORD=$REGISTRY_PASSWORD
EOF
    chmod 0644 "$REGISTRY_ENV"
}
code=$(registry_status)
case "$code" in
401)
    write_registry_env
    say "registry: $REGISTRY_ADDR already answers (auth required); credentials in $REGISTRY_ENV" ;;
200)
    say "warning: a registry without auth answers on $REGISTRY_ADDR; auth tests will skip" ;;
000|"")
    mkdir -p "$REGISTRY_DIR/data"
    htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$REGISTRY_DIR/htpasswd" 2>/dev/null
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
auth:
  htpasswd:
    realm: pack-dev
    path: $REGISTRY_DIR/htpasswd
EOF
    setsid /usr/bin/docker-registry serve "$REGISTRY_DIR/config.yml" >>"$REGISTRY_LOG" 2>&1 </dev/null 9>&- &
    reg_pid=$!
    for _ in $(seq 1 40); do
        [ "$(registry_status)" = 401 ] && break
        kill -0 "$reg_pid" 2>/dev/null || die "docker-registry exited at start; see $REGISTRY_LOG"
        sleep 0.25
    done
    [ "$(registry_status)" = 401 ] || die "registry did not answer on $REGISTRY_ADDR; see $REGISTRY_LOG"
    record_started registry "$reg_pid" docker-registry
    write_registry_env
    say "registry: started on $REGISTRY_ADDR, pid $reg_pid, user $REGISTRY_USER; credentials in $REGISTRY_ENV" ;;
*)
    say "warning: something else answers on $REGISTRY_ADDR (HTTP $code); push tests will skip" ;;
esac

# --- 5. podman --------------------------------------------------------------------------------
# A drop-in over Debian's /usr/share/containers/containers.conf (it overrides key by key):
#   netns = "host": a container started without --network joins the host network, never the
#     default "podman" bridge (10.88.0.0/16); `podman kube play` still needs --network host.
#   cni_plugin_dirs: an empty dir, so no bridge can be set up even when something asks for one
#     (kube play in podman 4.3 writes a "podman-default-kube-network" bridge definition even with
#     --network host; without plugins it stays a file and never becomes a device). Podman then
#     warns "Error validating CNI config file" where it lists networks: expected.
#   default_ulimits: podman asks runc for RLIMIT_NOFILE 1048576 unless told; raising a hard limit
#     needs CAP_SYS_RESOURCE, which this machine withholds, so runc fails with "error setting
#     rlimit type 7: operation not permitted". Podman also lowers its own RLIMIT_NPROC to
#     kernel.pid_max when it starts, so nproc above that fails the same way (type 6): both are
#     pinned to what this machine allows.
#   cgroupfs and the file events log: there is no systemd or journald here.
PODMAN_CONF_DIR=/etc/containers/containers.conf.d
PODMAN_CONF="$PODMAN_CONF_DIR/50-pack-dev.conf"
NO_CNI_PLUGINS="$STATE_DIR/no-cni-plugins"
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nofile" = unlimited ] && nofile=1048576
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
podman_conf=$(cat <<EOF
# Written by scripts/setup-dev.sh (its step 5 says why); rewritten when it differs.
[containers]
netns = "host"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"

[network]
cni_plugin_dirs = ["$NO_CNI_PLUGINS"]
EOF
)
mkdir -p "$PODMAN_CONF_DIR" "$NO_CNI_PLUGINS"
if [ "$(cat "$PODMAN_CONF" 2>/dev/null)" = "$podman_conf" ]; then
    say "podman: $(podman --version | awk '{print $3}') already configured ($PODMAN_CONF)"
else
    printf '%s\n' "$podman_conf" >"$PODMAN_CONF"
    say "podman: $(podman --version | awk '{print $3}') configured: host network, nofile=$nofile, nproc=$nproc ($PODMAN_CONF)"
fi

say "ready in $(elapsed); stop what this started with scripts/teardown-dev.sh"
