#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: installs Debian's Fashion-MNIST package when it
# is missing, then pretrains three ViT anchors, builds the SN-Net, initialises its stitching layers
# by least squares, trains every stitch jointly, evaluates all of them, plots the Pareto frontier
# and selects a stitch for a budget. Arguments go to `snnet run` (e.g. `--preset full --out runs/full`).
set -euo pipefail
cd "$(dirname "$0")"

DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && ! printf '%s\n' "$@" | grep -q -- '^--data'; then
    echo "Fashion-MNIST is missing: installing Debian's dataset-fashion-mnist" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

exec cargo run --release -p snnet-cli --bin snnet -- run "$@"
