#!/usr/bin/env python3
"""Forward time of every stitch of an SN-Net: Rust (Burn) vs PyTorch running the same stitch.

    python3 compare/compare_stitches.py [--anchors deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224]
                                        [--ids 0,1,2,24,56] [--iters 3] [--batches 1,8]
                                        [--models swin_tiny_patch4_window7_224,...,resnet50]
                                        [--memory 0,1,2,56 [--memory-batch 8]] [--out FILE]

Rust runs `crates/snnet-core/examples/time_stitches.rs` (release; random weights; median of
--iters after one warm-up). PyTorch builds the same timm anchors (random weights, eval, inference
mode, as many threads as cores) and runs each stitch's path — front blocks 0..=j, a Linear, end
blocks k.., the end's final norm and head — as `snnet cost --anchors ... --format json` describes
it (ViT anchors). `--models` adds whole-model rows (each model alone: Swin, ResNet, any timm name
the zoo knows). Every batch size is one table with the ratio Rust / PyTorch (< 1: Rust is faster),
its geometric mean and its worst stitch; `--out` writes the tables to a markdown file too.
`--memory IDS` adds peak resident memory per stitch: the Rust probe (the built
`time_stitches` example) and a PyTorch probe (this script re-run) each load the whole SN-Net and
run the stitch at `--memory-batch` in a process of their own, whose max RSS the kernel reports.
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


def rust_times(anchors, ids, iters, batch):
    cmd = ["cargo", "run", "-q", "--release", "-p", "snnet-core", "--example", "time_stitches", "--",
           "--anchors", anchors, "--iters", str(iters), "--batch", str(batch)]
    if ids:
        cmd += ["--ids", ids]
    return [json.loads(l) for l in run(cmd).splitlines() if l.strip()]


def torch_median(fn, iters):
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torch_stitches(anchor_names):
    """A function running a stitch (as `snnet cost --format json` describes it) on timm anchors
    (random weights, eval mode; one Linear per anchor pair, as the stitching layer)."""
    import timm
    import torch

    torch.set_num_threads(os.cpu_count())
    anchors = [timm.create_model(n, pretrained=False).eval() for n in anchor_names.split(",")]
    layers = {}

    def forward(stitch, x):
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

    return forward


def peak_rss_mb(cmd):
    """Runs `cmd` to its end and returns its peak resident memory (MiB, the kernel's max RSS)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed (status {status})")
    return usage.ru_maxrss / 1024


def torch_probe(anchor_names, stitch, batch):
    """The PyTorch side of a memory row: the whole SN-Net's anchors in memory, one stitch run
    four times at `batch` (as the Rust probe: one warm-up and three timed runs)."""
    import torch

    forward = torch_stitches(anchor_names)
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(4):
            forward(stitch, x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--anchors", default="deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224")
    p.add_argument("--ids", default="", help="comma-separated ids (default: all)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--batch", type=int, help="one batch size (overrides --batches)")
    p.add_argument("--models", default="", help="comma-separated whole models to add (e.g. swin_tiny_patch4_window7_224,resnet50)")
    p.add_argument("--memory", default="", help="comma-separated ids: also measure each one's peak resident "
                   "memory, the whole SN-Net loaded and the stitch run at --memory-batch, each side in its own process")
    p.add_argument("--memory-batch", type=int, default=8)
    p.add_argument("--torch-probe", help=argparse.SUPPRESS)
    p.add_argument("--out", help="also write the tables here")
    args = p.parse_args()
    if args.torch_probe:
        return torch_probe(args.anchors, json.loads(args.torch_probe), args.memory_batch)
    batches = [args.batch] if args.batch else [int(b) for b in args.batches.split(",")]
    models = [m for m in args.models.split(",") if m]

    space = json.loads(run(["cargo", "run", "-q", "--release", "-p", "snnet-cli", "--bin", "snnet", "--",
                            "cost", "--anchors", args.anchors, "--format", "json"]))
    ours = {b: rust_times(args.anchors, args.ids, args.iters, b) for b in batches}
    ours_models = {(m, b): rust_times(m, "0", args.iters, b)[0] for m in models for b in batches}

    import timm
    import torch

    forward = torch_stitches(args.anchors)
    memory = [int(i) for i in args.memory.split(",") if i]
    memory_rows = []
    if memory:
        probe = os.path.join(ROOT, "target", "release", "examples", "time_stitches")
        for i in memory:
            rust_mb = peak_rss_mb([probe, "--anchors", args.anchors, "--ids", str(i),
                                   "--iters", "3", "--batch", str(args.memory_batch)])
            torch_mb = peak_rss_mb([sys.executable, os.path.abspath(__file__), "--anchors", args.anchors,
                                    "--memory-batch", str(args.memory_batch),
                                    "--torch-probe", json.dumps(space["stitches"][i])])
            memory_rows.append((i, rust_mb, torch_mb))

    out = [f"Forward, {os.cpu_count()} threads, torch {torch.__version__}, timm {timm.__version__}, "
           f"median of {args.iters} after one warm-up, random weights\n"]
    with torch.inference_mode():
        for b in batches:
            x = torch.randn(b, 3, 224, 224)
            rows = []
            for r in ours[b]:
                stitch = space["stitches"][r["id"]]
                rows.append((str(r["id"]), r["description"], r["flops"], r["ms"],
                             torch_median(lambda: forward(stitch, x), args.iters)))
            for m in models:
                model = timm.create_model(m, pretrained=False).eval()
                r = ours_models[(m, b)]
                rows.append(("–", m, r["flops"], r["ms"], torch_median(lambda: model(x), args.iters)))
            out.append(f"\n### Batch {b}\n")
            out.append("| id | path | GFLOPs | Rust (Burn flex) ms | PyTorch ms | ratio |")
            out.append("|---|---|---|---|---|---|")
            for i, d, f, a, t in rows:
                out.append(f"| {i} | {d} | {f / 1e9:.2f} | {a:.1f} | {t:.1f} | {a / t:.2f} |")
            ratios = [a / t for *_, a, t in rows]
            g = math.exp(sum(math.log(q) for q in ratios) / len(ratios))
            worst = max(range(len(rows)), key=lambda i: ratios[i])
            out.append(f"\nBatch {b}: geometric mean ratio over {len(rows)} rows: {g:.2f}; "
                       f"worst {ratios[worst]:.2f} ({rows[worst][1]})")
    if memory_rows:
        out.append(f"\n### Peak resident memory, batch {args.memory_batch}\n")
        out.append("The whole SN-Net in memory (every anchor and stitching layer, as a server holds it), "
                   "one stitch run four times; each side in its own process; the kernel's max RSS.\n")
        out.append("| id | Rust (Burn flex) MiB | PyTorch MiB | ratio |")
        out.append("|---|---|---|---|")
        for i, rust_mb, torch_mb in memory_rows:
            out.append(f"| {i} | {rust_mb:.0f} | {torch_mb:.0f} | {rust_mb / torch_mb:.2f} |")
    text = "\n".join(out)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
