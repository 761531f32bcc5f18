#!/usr/bin/env bash
# Measures one joint-training recipe of the main job's SN-Net on the shipped pretrained anchors:
# least-squares init (100 images, shared by every recipe) → `snnet train` with the given flags on
# all 60,000 training images → every stitch evaluated on all 10,000 test images → the result
# checks of issue 11 (frontier points, stitches in [S − 0.5, L + 0.5], below S − 1, Spearman ρ per
# anchor pair, the halfway-budget selection vs M), as the pipeline's ResultChecks computes them.
#
# Usage: scripts/joint_recipes.sh OUT NAME [snnet train flags...]
#   e.g. scripts/joint_recipes.sh runs/recipes a01 --epochs 2 --anchor-lr-scale 0.1
# The table of recipes tried is in docs/REPRODUCTION.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/joint_recipes.sh OUT NAME [train flags...]}
NAME=${2:?usage: scripts/joint_recipes.sh OUT NAME [train flags...]}
shift 2
SNNET=${SNNET:-./target/release/snnet}
[ -x "$SNNET" ] || cargo build -q --release --locked -p snnet-cli --bin snnet
C=crates/snnet-train/configs
ANCHORS=fmnist_vit_s,fmnist_vit_m,fmnist_vit_l
mkdir -p "$OUT/$NAME"
[ -f "$OUT/init.safetensors" ] || $SNNET init --anchors $ANCHORS \
    --weights $C/fmnist_vit_s.safetensors,$C/fmnist_vit_m.safetensors,$C/fmnist_vit_l.safetensors \
    --dataset fashion-mnist --output "$OUT/init.safetensors"
[ -f "$OUT/space.json" ] || $SNNET cost --anchors $ANCHORS --format json > "$OUT/space.json"
echo "$*" > "$OUT/$NAME/flags.txt"
start=$(date +%s)
[ -f "$OUT/$NAME/snnet.safetensors" ] || $SNNET train --snnet "$OUT/init.safetensors" "$@" --out "$OUT/$NAME"
mid=$(date +%s)
$SNNET eval --snnet "$OUT/$NAME/snnet.safetensors" --output "$OUT/$NAME/eval.jsonl"
end=$(date +%s)
echo "train $((mid - start)) s, eval $((end - mid)) s" | tee "$OUT/$NAME/time.txt"
python3 - "$OUT" "$NAME" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
space = json.load(open(f"{out}/space.json"))
stitches = {s["id"]: s for s in space["stitches"]}
rows = {r["cfg_id"]: r for r in map(json.loads, open(f"{out}/{name}/eval.jsonl"))}
n_anchors = len(space["anchors"])
acc = {i: r["acc1"] for i, r in rows.items()}
low, mid, high = acc[0], acc[n_anchors // 2], acc[n_anchors - 1]
# Pareto frontier (FLOPs ascending, strictly more accurate).
front, best = [], -1.0
for r in sorted(rows.values(), key=lambda r: (r["flops"], -r["acc1"])):
    if r["acc1"] > best:
        front.append(r["cfg_id"]); best = r["acc1"]
others = [r for i, r in rows.items() if i >= n_anchors]
in_band = sum(low - 0.5 <= r["acc1"] <= high + 0.5 for r in others)
below = sum(r["acc1"] < low - 1.0 for r in others)
def rank(v):
    order = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v); i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]: j += 1
        for k in range(i, j + 1): r[order[k]] = (i + j) / 2
        i = j + 1
    return r
def spearman(pts):
    if len(pts) < 2: return None
    a, b = rank([p[0] for p in pts]), rank([p[1] for p in pts])
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
    return num / den if den else None
groups = {}
for r in others:
    s = stitches[r["cfg_id"]]
    groups.setdefault((s["anchors"][0], s["anchors"][-1]), []).append((r["flops"], r["acc1"]))
rhos = {k: spearman(v) for k, v in sorted(groups.items())}
budget = (rows[0]["flops"] + rows[n_anchors - 1]["flops"]) // 2
sel = max((r for r in rows.values() if r["flops"] <= budget), key=lambda r: r["acc1"])
print(f"{name}: anchors {low:.2f} / {mid:.2f} / {high:.2f}; frontier {len(front)} {front}; "
      f"in band {in_band}/{len(others)}; below S-1 {below}; "
      f"rho " + " ".join(f"{a}->{b} {'-' if v is None else f'{v:.2f}'}" for (a, b), v in rhos.items()) +
      f"; halfway selects {sel['cfg_id']} ({sel['acc1']:.2f} vs M {mid:.2f})")
PY
