#!/usr/bin/env bash
# Peers for benchmarks/transfer.py that cannot share pack's environment: huggingface_hub 0.36
# (the last release line that still drives hf_transfer; 1.x dropped it for hf_xet) with
# hf_transfer, in their own venv. pack's .venv keeps its current huggingface_hub, which the
# benchmark measures as "snapshot_download (plain)". Idempotent; not needed by the tests.
set -euo pipefail
VENV=${PACK_BENCH_PEERS_VENV:-/opt/pack-bench-peers}
if "$VENV/bin/python" -c "import hf_transfer, huggingface_hub" 2>/dev/null; then
    echo "[bench-peers] $VENV already has huggingface_hub and hf_transfer"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "huggingface_hub==0.36.2" "hf_transfer==0.1.9"
echo "[bench-peers] installed into $VENV"
