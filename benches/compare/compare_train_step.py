#!/usr/bin/env python3
"""Training step time per stitch: Rust (Burn) vs PyTorch doing the same step on the same machine.

    python3 benches/compare/compare_train_step.py [--ids 0,1,2,10,30] [--iters 5] [--shards N] [--rounds R]
    BURN_DEVICE=cuda python3 benches/compare/compare_train_step.py --bin-dir DIR --device cuda --shards 1

The SN-Net is the Fashion-MNIST family of crates/snnet-train/configs/fashion_mnist_vit.json (ViTs
on 1×28×28, depth 6; patch size and widths read from that file: patch 4, widths 16/32/64). One step = forward of the stitch, label-smoothed
cross-entropy, backward, AdamW update of all parameters; batch 128; median of --iters steps after
2 warm-ups; PyTorch with as many threads as cores. Rust runs
`benches/src/bin/time_train_step.rs` (release). The stitch paths come from
`snnet cost --anchors ... --format json`, so both run the same blocks.
With --rounds R (default 3) Rust (all stitches) and PyTorch (all stitches) alternate R times in
one run, so a load that comes and goes hits both; each cell is the median over the rounds of the
per-round medians. Prints a markdown table with the ratio Rust / PyTorch (< 1: Rust is faster)
and their geometric mean.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

from common import ROOT, run, torch_threads

NAMES = ["fmnist_vit_s", "fmnist_vit_m", "fmnist_vit_l"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ids", default="0,1,2,10,30")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--shards", type=int, default=0, help="Rust data-parallel shards (0: the CLI's default)")
    p.add_argument("--rounds", type=int, default=3, help="Rust and PyTorch alternate this many times")
    p.add_argument("--bin-dir", help="prebuilt `snnet` and `time_train_step` here instead of cargo run "
                   "(e.g. built with --features cuda for a GPU machine without cargo)")
    p.add_argument("--device", default="cpu", help="PyTorch's device: cpu or cuda (run Rust with "
                   "BURN_DEVICE=cuda to match)")
    args = p.parse_args()

    def rust(package, kind, name, *rest):
        if args.bin_dir:
            return run([os.path.join(args.bin_dir, name), *rest])
        return run(["cargo", "run", "-q", "--release", "-p", package, kind, name, "--", *rest])

    space = json.loads(rust("snnet-cli", "--bin", "snnet", "cost", "--anchors", ",".join(NAMES),
                            "--format", "json"))

    def time_rust():
        return [json.loads(l) for l in rust("snnet-benches", "--bin", "time_train_step", "--ids", args.ids,
                                            "--iters", str(args.iters), "--batch", str(args.batch),
                                            "--shards", str(args.shards)).splitlines() if l.strip()]

    from timm.models.vision_transformer import VisionTransformer

    torch = torch_threads()
    with open(os.path.join(ROOT, "crates", "snnet-train", "configs", "fashion_mnist_vit.json")) as f:
        configs = {m["name"]: m["config"] for m in json.load(f)["models"]}
    anchors = []
    for name in NAMES:
        c = configs[name]
        anchors.append(VisionTransformer(img_size=28, patch_size=c["patch_size"][0], in_chans=1, num_classes=10,
                                         embed_dim=c["embed_dim"], depth=c["depth"], num_heads=c["num_heads"],
                                         mlp_ratio=c["mlp_hidden"] / c["embed_dim"]))
    widths = [configs[n]["embed_dim"] for n in NAMES]
    layers = torch.nn.ModuleDict({f"{a}-{a + 1}": torch.nn.Linear(widths[a], widths[a + 1]) for a in range(2)})
    dev = torch.device(args.device)
    anchors = [m.to(dev) for m in anchors]
    layers = layers.to(dev)
    params = [p for m in anchors for p in m.parameters()] + list(layers.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(args.batch, 1, 28, 28, device=dev)
    y = torch.arange(args.batch, device=dev) % 10
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def forward(stitch):
        ids, cuts = stitch["anchors"], stitch["cuts"]
        if len(ids) == 1:
            return anchors[ids[0]](x)
        f, e = anchors[ids[0]], anchors[ids[1]]
        j, k = cuts[0]
        t = f._pos_embed(f.patch_embed(x))
        for blk in f.blocks[: j + 1]:
            t = blk(t)
        t = layers[f"{ids[0]}-{ids[1]}"](t)
        for blk in e.blocks[k:]:
            t = blk(t)
        return e.forward_head(e.norm(t))

    def time_torch(stitch):
        times = []
        for i in range(args.iters + 2):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(forward(stitch), y)
            loss.backward()
            opt.step()
            sync()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    # Rust then PyTorch, `--rounds` times: per stitch, the median of the per-round medians.
    rust_ms, torch_ms = {}, {}
    for round_ in range(args.rounds):
        ours = time_rust()
        for r in ours:
            rust_ms.setdefault(r["id"], []).append(r["ms"])
        for r in ours:
            torch_ms.setdefault(r["id"], []).append(time_torch(space["stitches"][r["id"]]))
        print(f"round {round_ + 1}: " + ", ".join(
            f"{r['id']}: {rust_ms[r['id']][-1]:.1f}/{torch_ms[r['id']][-1]:.1f} ms" for r in ours), file=sys.stderr)
    rows = [(r["id"], r["description"], statistics.median(rust_ms[r["id"]]), statistics.median(torch_ms[r["id"]]))
            for r in ours]

    shards = ours[0]["shards"] if ours else 0
    where = f"{os.cpu_count()} threads" if dev.type == "cpu" else torch.cuda.get_device_name()
    print(f"Training step, batch {args.batch}, {where}, torch {torch.__version__}, "
          f"Rust in {shards} data-parallel shards, {args.rounds} alternating rounds\n")
    backend = os.environ.get("BURN_DEVICE", "flex")
    print(f"| stitch | path | Rust (Burn {backend}) ms | PyTorch ({dev.type}) ms | ratio |")
    print("|---|---|---|---|---|")
    for i, d, a, b in rows:
        print(f"| {i} | {d} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    if rows:
        geomean = math.exp(statistics.fmean(math.log(a / b) for _, _, a, b in rows))
        print(f"\nGeometric mean of the ratios: {geomean:.2f}")


if __name__ == "__main__":
    main()
