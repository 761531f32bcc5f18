#!/usr/bin/env bash
# Trains the Fashion-MNIST demo family (fmnist_vit_s/m/l, crates/snnet-train/configs/
# fashion_mnist_vit.json) from scratch with `snnet pretrain`, the three anchors side by side — S
# and M for EPOCHS epochs on one thread each, L for twice as many on two data-parallel shards (the
# recipe of the shipped weights: docs/REPRODUCTION.md and crates/snnet-train/configs/MODEL_CARD.md)
# — then measures each on all 10,000 and on the first 1,000 test images and prints the SHA-256 of
# the weights. Usage: scripts/pretrain_anchors.sh [OUT_DIR] [EPOCHS] (default:
# crates/snnet-train/configs, 6). About an hour on 2 cores. The same seed, thread and shard
# counts give the same weights on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-crates/snnet-train/configs}
EPOCHS=${2:-6}
SEED=${SEED:-0}
mkdir -p "$OUT"
cargo build --release -p snnet-cli
SNNET=target/release/snnet
pids=()
for a in s m; do
    RAYON_NUM_THREADS=1 "$SNNET" pretrain --model "fmnist_vit_$a" --train-samples 0 --epochs "$EPOCHS" \
        --batch-size 64 --shards 1 --lr 3e-3 --warmup-epochs 0.2 --seed "$SEED" \
        --output "$OUT/fmnist_vit_$a.safetensors" >"$OUT/.pretrain_$a.log" 2>&1 &
    pids+=($!)
done
RAYON_NUM_THREADS=2 "$SNNET" pretrain --model fmnist_vit_l --train-samples 0 --epochs $((2 * EPOCHS)) \
    --batch-size 64 --shards 2 --lr 3e-3 --warmup-epochs 0.2 --seed "$SEED" \
    --output "$OUT/fmnist_vit_l.safetensors" >"$OUT/.pretrain_l.log" 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
for a in s m l; do
    tmp=$(mktemp -d)
    "$SNNET" init --anchors "fmnist_vit_$a" --weights "$OUT/fmnist_vit_$a.safetensors" \
        --init kaiming --output "$tmp/one.safetensors" >/dev/null
    "$SNNET" eval --snnet "$tmp/one.safetensors" --output "$tmp/eval.jsonl" >/dev/null 2>&1
    "$SNNET" eval --snnet "$tmp/one.safetensors" --test-samples 1000 --output "$tmp/eval1k.jsonl" >/dev/null 2>&1
    echo "fmnist_vit_$a all 10,000: $(head -1 "$tmp/eval.jsonl")"
    echo "fmnist_vit_$a first 1,000: $(head -1 "$tmp/eval1k.jsonl")"
    rm -rf "$tmp"
done
(cd "$OUT" && sha256sum fmnist_vit_s.safetensors fmnist_vit_m.safetensors fmnist_vit_l.safetensors)
