#!/usr/bin/env python3
"""Rust (Burn) vs PyTorch (timm) forward time on the same machine, side by side.

Usage (dev machine; needs `pip install torch timm`):

    python3 benches/compare/compare_pytorch.py [--features openblas-system] [--skip-cargo]

Runs `cargo bench -p snnet-benches --bench forward` (unless --skip-cargo) and reads criterion's
median for every backend it measured, then times the same models in timm (eval, inference
mode, same batch, same thread count as the machine's cores, median of --iters runs after
--warmup runs), and prints a markdown table with Rust/PyTorch ratios (< 1: Rust is faster).
"""

import argparse
import os
import statistics
import time

from common import cargo_bench, criterion_group, criterion_median, torch_threads

MODELS = ["deit_tiny_patch16_224", "deit_small_patch16_224", "swin_tiny_patch4_window7_224", "resnet50"]
BATCH = 8


def criterion_results():
    base = criterion_group("forward_b8")
    out = {}
    if not os.path.isdir(base):
        return out
    for backend in sorted(os.listdir(base)):
        for model in MODELS:
            median = criterion_median(os.path.join(base, backend, model))
            if median is not None:
                out[(backend, model)] = median / 1e6  # ns -> ms
    return out


def torch_times(iters, warmup):
    import timm

    threads = os.cpu_count()
    torch = torch_threads(threads)
    out = {}
    for name in MODELS:
        model = timm.create_model(name, pretrained=False).eval()
        x = torch.randn(BATCH, 3, 224, 224)
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
        out[name] = statistics.median(times)
    return out, threads, torch.__version__, timm.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", default="", help="cargo features for the bench (e.g. openblas-system)")
    p.add_argument("--skip-cargo", action="store_true", help="only read existing criterion results")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    if not args.skip_cargo:
        cargo_bench("forward", args.features)
    rust = criterion_results()
    torch_ms, threads, tv, timmv = torch_times(args.iters, args.warmup)
    print(f"\nbatch {BATCH}, 224x224, fp32, {threads} threads; torch {tv}, timm {timmv}\n")
    print("| model | backend | Rust (ms) | PyTorch (ms) | Rust/PyTorch |")
    print("|---|---|---:|---:|---:|")
    for (backend, model), ms in sorted(rust.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ref = torch_ms[model]
        print(f"| {model} | {backend} | {ms:.1f} | {ref:.1f} | {ms / ref:.2f} |")


if __name__ == "__main__":
    main()
