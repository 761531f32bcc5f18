#!/usr/bin/env bash
# R2 and R3 of docs/REPRODUCTION.md on the anchors of a finished `snnet run` folder:
#   R2: least-squares vs Kaiming init of the stitching layers — every stitch evaluated before any
#       training and after the same short joint training;
#   R3: Fast-to-Slow vs Slow-to-Fast stitching, each least-squares initialised and trained the same.
# Usage: scripts/reproduce.sh RUN_DIR [OUT_DIR]   (RUN_DIR from ./run.sh, e.g. runs/quick)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: scripts/reproduce.sh RUN_DIR [OUT_DIR]}
OUT=${2:-$RUN/reproduce}
mkdir -p "$OUT"
cargo build -q --release -p snnet-cli --bin snnet
SNNET=./target/release/snnet
ANCHORS=fmnist_vit_s,fmnist_vit_m,fmnist_vit_l
WEIGHTS=$RUN/anchors/fmnist_vit_s.safetensors,$RUN/anchors/fmnist_vit_m.safetensors,$RUN/anchors/fmnist_vit_l.safetensors
TRAIN=(--train-samples 10000 --epochs 1 --lr 1e-3 --warmup-epochs 0.2 --batch-size 64)
EVAL=(--test-samples 5000)

variant() {  # name, init flags...
    local name=$1; shift
    [ -f "$OUT/$name/init.safetensors" ] || { mkdir -p "$OUT/$name";
        $SNNET init --anchors $ANCHORS --weights "$WEIGHTS" "$@" --output "$OUT/$name/init.safetensors"; }
    $SNNET eval --snnet "$OUT/$name/init.safetensors" "${EVAL[@]}" --output "$OUT/$name/eval_init.jsonl"
    [ -f "$OUT/$name/snnet.safetensors" ] || $SNNET train --snnet "$OUT/$name/init.safetensors" "${TRAIN[@]}" --out "$OUT/$name"
    $SNNET eval --snnet "$OUT/$name/snnet.safetensors" "${EVAL[@]}" --output "$OUT/$name/eval_trained.jsonl"
}

variant ls --init ls --dataset fashion-mnist
variant kaiming --init kaiming
variant slow_to_fast --init ls --dataset fashion-mnist --direction slow-to-fast

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def load(p):
    return {r["cfg_id"]: r for r in map(json.loads, open(p))}
def stitched(t):
    return [r["acc1"] for i, r in t.items() if i > 2]
print("| variant | stage | anchors (S, M, L) | stitches: mean | min | max |")
print("|---|---|---|---|---|---|")
for name in ["ls", "kaiming", "slow_to_fast"]:
    for stage in ["init", "trained"]:
        t = load(f"{out}/{name}/eval_{stage}.jsonl")
        s = stitched(t)
        a = ", ".join(f"{t[i]['acc1']:.2f}" for i in range(3))
        print(f"| {name} | {stage} | {a} | {statistics.mean(s):.2f} | {min(s):.2f} | {max(s):.2f} |")
PY
