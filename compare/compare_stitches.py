#!/usr/bin/env python3
"""Forward time of every stitch of an SN-Net: Rust (Burn) vs PyTorch running the same stitch.

    python3 compare/compare_stitches.py [--anchors deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224]
                                        [--ids 0,1,2,24,56] [--iters 3] [--batch 8]

Rust runs `crates/snnet-core/examples/time_stitches.rs` (release; random weights; median of
--iters after one warm-up). PyTorch builds the same timm anchors (random weights, eval, inference mode, as many
threads as cores) and runs each stitch's path — front blocks 0..=j, a Linear, end blocks k.., the
end's final norm and head — as `snnet cost --anchors ... --format json` describes it (ViT anchors).
Prints a markdown table with the ratio Rust / PyTorch (< 1: Rust is faster) and the geometric mean.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--anchors", default="deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224")
    p.add_argument("--ids", default="", help="comma-separated ids (default: all)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()

    space = json.loads(run(["cargo", "run", "-q", "--release", "-p", "snnet-cli", "--bin", "snnet", "--",
                            "cost", "--anchors", args.anchors, "--format", "json"]))
    cmd = ["cargo", "run", "-q", "--release", "-p", "snnet-core", "--example", "time_stitches", "--",
           "--anchors", args.anchors, "--iters", str(args.iters), "--batch", str(args.batch)]
    if args.ids:
        cmd += ["--ids", args.ids]
    ours = [json.loads(l) for l in run(cmd).splitlines() if l.strip()]

    import timm
    import torch

    torch.set_num_threads(os.cpu_count())
    anchors = [timm.create_model(n, pretrained=False).eval() for n in args.anchors.split(",")]
    layers = {}
    x = torch.randn(args.batch, 3, 224, 224)

    def forward(stitch):
        ids, cuts = stitch["anchors"], stitch["cuts"]
        if len(ids) == 1:
            return anchors[ids[0]](x)
        t = anchors[ids[0]]._pos_embed(anchors[ids[0]].patch_embed(x))
        start = 0
        for i, a in enumerate(ids):
            m = anchors[a]
            end = cuts[i][0] + 1 if i < len(cuts) else len(m.blocks)
            for blk in m.blocks[start:end]:
                t = blk(t)
            if i < len(cuts):
                key = (a, ids[i + 1])
                if key not in layers:
                    layers[key] = torch.nn.Linear(m.embed_dim, anchors[ids[i + 1]].embed_dim)
                t = layers[key](t)
                start = cuts[i][1]
        last = anchors[ids[-1]]
        return last.forward_head(last.norm(t))

    rows = []
    with torch.inference_mode():
        for r in ours:
            stitch = space["stitches"][r["id"]]
            forward(stitch)
            times = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                forward(stitch)
                times.append((time.perf_counter() - t0) * 1e3)
            rows.append((r["id"], r["description"], r["flops"], r["ms"], statistics.median(times)))

    print(f"Forward, batch {args.batch}, {os.cpu_count()} threads, torch {torch.__version__}, timm {timm.__version__}\n")
    print("| id | path | GFLOPs | Rust (Burn flex) ms | PyTorch ms | ratio |")
    print("|---|---|---|---|---|---|")
    for i, d, f, a, b in rows:
        print(f"| {i} | {d} | {f / 1e9:.2f} | {a:.0f} | {b:.0f} | {a / b:.2f} |")
    g = math.exp(sum(math.log(a / b) for *_, a, b in rows) / len(rows))
    print(f"\nGeometric mean ratio over {len(rows)} stitches: {g:.2f}")


if __name__ == "__main__":
    main()
