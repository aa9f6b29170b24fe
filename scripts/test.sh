#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as root: install, start the Docker engine,
# base image and registry the end-to-end tests need, run pytest, stop what was started
# (PACK_KEEP_DEV_ENV=1 keeps it running for the next run). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/setup-dev.sh
[ "${PACK_KEEP_DEV_ENV:-0}" = 1 ] || trap 'bash scripts/teardown-dev.sh' EXIT
export PACK_TRUSS_PYTHON="${PACK_TRUSS_PYTHON:-${PACK_TRUSS_VENV:-/opt/pack-truss-venv}/bin/python}"
.venv/bin/python -m pytest -q "$@"
