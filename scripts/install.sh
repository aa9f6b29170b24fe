#!/usr/bin/env bash
# Install pack and its test dependencies into .venv (as root on Debian; idempotent, fast when
# done before), plus the reference Truss 0.18.30 in its own venv for the differential tests.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[install] %s\n' "$*"; }

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    # System site packages: whatever the machine already has need not be downloaded again.
    python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c 'import packager, pytest, moto, huggingface_hub, gcp_storage_emulator' 2>/dev/null \
   || [ pyproject.toml -nt .venv/.pack-installed ]; then
    say "pip install -e .[test]"
    .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v -E '^(WARNING: Location|DEPRECATION)' || true
    .venv/bin/python -c 'import packager, pytest, moto' || { echo "[install] pack did not install" >&2; exit 1; }
    touch .venv/.pack-installed
fi

# The KServe SDK's generated models are the InferenceService schema of tests/deploy; the models
# are read as source, so the SDK goes in without its dependencies (grpcio, pandas, kubernetes, ...).
if ! .venv/bin/python -m pip show -q kserve >/dev/null 2>&1; then
    say "pip install --no-deps kserve==0.21.0 (InferenceService models for the deploy tests)"
    .venv/bin/python -m pip install -q --no-deps kserve==0.21.0 2>&1 | grep -v -E '^(WARNING: Location|DEPRECATION)' || true
fi

TRUSS_VENV="${PACK_TRUSS_VENV:-/opt/pack-truss-venv}"
if [ "${PACK_SKIP_TRUSS:-0}" != 1 ] && ! "$TRUSS_VENV/bin/python" -c 'import truss.base.truss_config' 2>/dev/null; then
    say "installing the reference truss==0.18.30 into $TRUSS_VENV (differential tests)"
    python3 -m venv "$TRUSS_VENV"
    "$TRUSS_VENV/bin/python" -m pip install -q truss==0.18.30 2>&1 | grep -v -E '^WARNING: Location' || true
    "$TRUSS_VENV/bin/python" -c 'import truss.base.truss_config' \
        || say "truss could not be installed: the differential tests will be skipped"
fi
say "ready: $(.venv/bin/python -c 'import packager; print("pack", packager.__version__)')"
