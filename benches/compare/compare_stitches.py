#!/usr/bin/env python3
"""Forward time of every stitch of an SN-Net: Rust (Burn) vs PyTorch running the same stitch.

    python3 benches/compare/compare_stitches.py [--anchors deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224]
                                        [--anchors swin_tiny_patch4_window7_224,...]  (repeatable)
                                        [--ids 0,1,2,24,56] [--iters 3] [--batches 1,8]
                                        [--rounds 1] [--recheck 1.15 [--recheck-rounds 2]]
                                        [--models resnet50,...]
                                        [--memory 0,1,2,56 [--memory-batch 8]] [--out FILE]

Rust runs `benches/src/bin/time_stitches.rs` (release, snnet-core's default features, those a
`cargo add snnet-core` user gets; random weights; median of --iters after one warm-up). PyTorch
builds the same timm anchors (random weights, eval, inference mode, as many threads as cores) and
runs each stitch's path as `snnet cost --anchors ... --format json` describes it: for ViT/DeiT,
front blocks 0..=j, a Linear, end blocks k.., the end's final norm and head; for Swin, the
reference's forward_until(stage, j) / Linear / forward_from(stage, k). `--models` adds
whole-model rows (ResNet, any timm name the zoo knows). Every family and batch size is one table
with the ratio Rust / PyTorch (< 1: Rust is faster), its geometric mean and its worst stitch;
`--out` writes the tables to a markdown file too.

The two sides alternate stitch by stitch, so that a slow spell of a shared machine hits both
sides' measurement of the same stitch alike: one Rust process per family stays alive
(`time_stitches --serve`, the SN-Net built once) and times a stitch (one warm-up, --iters timed
runs) while this process waits, then PyTorch times the same stitch while the Rust process waits
(each model likewise). `--rounds R` repeats the whole measurement, the side that goes first
swapping from round to round, and keeps, per row and side, the fastest of the R medians (a busy
machine only ever adds time). A slow spell can still land on one row's medians in every round:
after the rounds, each row whose ratio is above `--recheck` (default 1.15) is measured again,
both sides, up to `--recheck-rounds` (default 2) more times; the table marks such rows
"re-timed" with their number of rounds, and `--recheck 0` turns it off.

`--memory IDS` adds peak resident memory per stitch of the first family: the Rust probe (the
built `time_stitches` binary) and a PyTorch probe (this script re-run) each load the whole
SN-Net and run the stitch at `--memory-batch` in a process of their own, whose max RSS the
kernel reports.
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

from common import ROOT, run, torch_threads



def build_probe():
    """Builds the Rust probe (the `time_stitches` binary of snnet-benches, default features) and
    returns its path. Built on its own: a build with other packages unifies other features."""
    run(["cargo", "build", "-q", "--release", "--locked", "-p", "snnet-benches", "--bin", "time_stitches"])
    return os.path.join(ROOT, "target", "release", "time_stitches")


class RustProbe:
    """One `time_stitches --serve` process: the SN-Net (or model) built once, one stitch timed
    per request while the caller waits."""

    def __init__(self, probe, anchors):
        cmd = [probe, "--anchors", anchors, "--serve"]
        print("$", " ".join(cmd), file=sys.stderr)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def time(self, stitch_id, batch, iters):
        self.proc.stdin.write(f"{stitch_id} {batch} {iters}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Rust probe exited (status {self.proc.wait()})")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise RuntimeError(f"the Rust probe failed (status {self.proc.returncode})")


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

    torch = torch_threads()
    anchors = [timm.create_model(n, pretrained=False).eval() for n in anchor_names.split(",")]
    layers = {}

    def layer(a, b, stage, c_front, c_end):
        key = (a, b, stage)
        if key not in layers:
            layers[key] = torch.nn.Linear(c_front, c_end)
        return layers[key]

    def forward_vit(stitch, x):
        ids, cuts = stitch["anchors"], stitch["cuts"]
        t = anchors[ids[0]]._pos_embed(anchors[ids[0]].patch_embed(x))
        start = 0
        for i, a in enumerate(ids):
            m = anchors[a]
            end = cuts[i][0] + 1 if i < len(cuts) else len(m.blocks)
            for blk in m.blocks[start:end]:
                t = blk(t)
            if i < len(cuts):
                t = layer(a, ids[i + 1], None, m.embed_dim, anchors[ids[i + 1]].embed_dim)(t)
                start = cuts[i][1]
        last = anchors[ids[-1]]
        return last.forward_head(last.norm(t))

    def forward_swin(stitch, x):
        # The reference's forward_until(stage, j) / forward_from(stage, k): timm runs a stage's
        # PatchMerging at the start of the next stage (`layers[s + 1].downsample`), so the front
        # runs stages < s, stage s's downsample and blocks 0..=j; the end runs blocks k.. of
        # stage s, the later stages, the norm and the head. Tokens stay NHWC (Linear on C).
        (front, end), ((j, k),), s = stitch["anchors"], stitch["cuts"], stitch["stage"]
        f, e = anchors[front], anchors[end]
        t = f.patch_embed(x)
        for st in f.layers[:s]:
            t = st(t)
        t = f.layers[s].downsample(t)
        t = f.layers[s].blocks[: j + 1](t)
        t = layer(front, end, s, t.shape[-1], e.layers[s].blocks[0].norm1.normalized_shape[0])(t)
        t = e.layers[s].blocks[k:](t)
        for st in e.layers[s + 1:]:
            t = st(t)
        return e.forward_head(e.norm(t))

    def forward(stitch, x):
        if len(stitch["anchors"]) == 1:
            return anchors[stitch["anchors"][0]](x)
        return (forward_swin if "stage" in stitch else forward_vit)(stitch, x)

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


def table(out, title, rows):
    """Appends one markdown table of (id, description, flops, Rust ms, PyTorch ms) rows and its
    summary line (geometric mean and worst ratio)."""
    out.append(f"\n### {title}\n")
    out.append("| id | path | GFLOPs | Rust (Burn flex) ms | PyTorch ms | ratio |")
    out.append("|---|---|---|---|---|---|")
    for i, d, f, a, t in rows:
        out.append(f"| {i} | {d} | {f / 1e9:.2f} | {a:.1f} | {t:.1f} | {a / t:.2f} |")
    ratios = [a / t for *_, a, t in rows]
    g = math.exp(sum(math.log(q) for q in ratios) / len(ratios))
    worst = max(range(len(rows)), key=lambda i: ratios[i])
    summary = (f"{title}: geometric mean ratio over {len(rows)} rows: {g:.2f}; "
               f"worst {ratios[worst]:.2f} ({rows[worst][1]})")
    out.append(f"\n{summary}")
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--anchors", action="append", help="an SN-Net's anchors, comma-separated timm names "
                   "(ViT/DeiT or Swin); repeat for several families (default: DeiT-Ti/S/B)")
    p.add_argument("--ids", default="", help="comma-separated ids, in every family (default: all)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--batch", type=int, help="one batch size (overrides --batches)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole measurement (the side that goes "
                   "first swaps each round); keep each side's fastest median per row")
    p.add_argument("--models", default="", help="comma-separated whole models to add (e.g. resnet50)")
    p.add_argument("--memory", default="", help="comma-separated ids of the first family: also measure each "
                   "one's peak resident memory, the whole SN-Net loaded and the stitch run at --memory-batch, "
                   "each side in its own process")
    p.add_argument("--memory-batch", type=int, default=8)
    p.add_argument("--torch-probe", help=argparse.SUPPRESS)
    p.add_argument("--recheck", type=float, default=1.15, help="after the rounds, measure every row whose "
                   "ratio is above this again, both sides (0: never); the table marks those rows")
    p.add_argument("--recheck-rounds", type=int, default=2, help="how many times at most (each time only the "
                   "rows still above --recheck)")
    p.add_argument("--out", help="also write the tables here")
    args = p.parse_args()
    families = args.anchors or ["deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224"]
    if args.torch_probe:
        return torch_probe(families[0], json.loads(args.torch_probe), args.memory_batch)
    batches = [args.batch] if args.batch else [int(b) for b in args.batches.split(",")]
    models = [m for m in args.models.split(",") if m]

    spaces = {a: json.loads(run(["cargo", "run", "-q", "--release", "--locked", "-p", "snnet-cli", "--bin",
                                 "snnet", "--", "cost", "--anchors", a, "--format", "json"]))
              for a in families}
    probe = build_probe()
    only = [int(i) for i in args.ids.split(",") if i]
    ids = {a: only or list(range(len(spaces[a]["stitches"]))) for a in families}

    # Memory first, while this process is small: Linux carries a parent's resident size at fork
    # into the child's max RSS (exec records the copied address space's high-water mark), so a
    # probe started after the timing's models are loaded would read at least their size.
    memory_rows = []
    memory = [int(i) for i in args.memory.split(",") if i]
    if memory:
        # The Rust probe loads a saved SN-Net (random weights), so every weight is in memory as
        # `snnet serve` holds it (built in place, Burn would allocate only the parameters a
        # stitch reads; the PyTorch probe allocates every anchor).
        checkpoint = os.path.join(ROOT, "target", "compare_memory.safetensors")
        run(["cargo", "run", "-q", "--release", "--locked", "-p", "snnet-cli", "--bin", "snnet", "--", "init",
             "--anchors", families[0], "--random-weights", "--init", "kaiming", "--output", checkpoint])
    for i in memory:
        rust_mb = peak_rss_mb([probe, "--snnet", checkpoint, "--ids", str(i),
                               "--iters", "3", "--batch", str(args.memory_batch)])
        torch_mb = peak_rss_mb([sys.executable, os.path.abspath(__file__), "--anchors", families[0],
                                "--memory-batch", str(args.memory_batch),
                                "--torch-probe", json.dumps(spaces[families[0]]["stitches"][i])])
        memory_rows.append((i, rust_mb, torch_mb))

    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    import timm
    import torch

    # rows[(family or model, batch)][key]: (description, flops, [Rust ms per round], [PyTorch ms per round])
    rows = {}

    def record(group, key, description, flops, rust_ms, torch_ms):
        row = rows.setdefault(group, {}).setdefault(key, (description, flops, [], []))
        row[2].append(rust_ms)
        row[3].append(torch_ms)

    def pair(rust, torch_fn, rust_first):
        """One row's measurement: Rust, then PyTorch on the same input size (or the reverse)."""
        if rust_first:
            r = rust()
            return r, torch_median(torch_fn, args.iters)
        t = torch_median(torch_fn, args.iters)
        return rust(), t

    def measure(rust_first, wanted):
        """One round over every row that `wanted(group, key)` accepts."""
        for a in families:
            todo = {b: [i for i in ids[a] if wanted((a, b), str(i))] for b in batches}
            if not any(todo.values()):
                continue
            space, forward, rust = spaces[a], torch_stitches(a), RustProbe(probe, a)
            for b in batches:
                x = torch.randn(b, 3, 224, 224)
                for i in todo[b]:
                    stitch = space["stitches"][i]
                    r, t = pair(lambda: rust.time(i, b, args.iters), lambda: forward(stitch, x), rust_first)
                    record((a, b), str(r["id"]), r["description"], r["flops"], r["ms"], t)
            rust.close()
            del forward
        for m in models:
            todo = [b for b in batches if wanted(("models", b), m)]
            if not todo:
                continue
            model, rust = timm.create_model(m, pretrained=False).eval(), RustProbe(probe, m)
            for b in todo:
                x = torch.randn(b, 3, 224, 224)
                r, t = pair(lambda: rust.time(0, b, args.iters), lambda: model(x), rust_first)
                record(("models", b), m, m, r["flops"], r["ms"], t)
            rust.close()
            del model

    def ratio(group, key):
        _, _, a, t = rows[group][key]
        return min(a) / min(t)

    retimed = set()
    with torch.inference_mode():
        for round_ in range(args.rounds):
            measure(round_ % 2 == 0, lambda group, key: True)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        # A slow spell of a shared machine can land on one row's Rust (or PyTorch) medians in
        # every round; the rows above --recheck are measured again, both sides, at the end.
        for round_ in range(args.recheck_rounds if args.recheck else 0):
            slow = {(g, k) for g, group_rows in rows.items() for k in group_rows if ratio(g, k) > args.recheck}
            if not slow:
                break
            retimed |= slow
            print(f"re-timing {len(slow)} rows above {args.recheck}: {sorted(slow)}", file=sys.stderr)
            measure((args.rounds + round_) % 2 == 0, lambda group, key: (group, key) in slow)

    best = f"the fastest of {args.rounds} rounds' medians" if args.rounds > 1 else "one round"
    commit = run(["git", "rev-parse", "--short", "HEAD"]).strip()
    dirty = " (with uncommitted changes)" if run(["git", "status", "--porcelain", "--untracked-files=no"]).strip() else ""
    out = [f"`python3 benches/compare/compare_stitches.py {' '.join(sys.argv[1:])}` at commit {commit}{dirty}, "
           f"{time.strftime('%Y-%m-%d %H:%M %Z')}\n",
           f"Forward, {os.cpu_count()} threads, torch {torch.__version__}, timm {timm.__version__}; "
           f"median of {args.iters} after one warm-up, {best}; random weights; Rust and PyTorch "
           "alternating stitch by stitch"
           + (f"; rows above {args.recheck} after the rounds measured again, both sides, up to "
              f"{args.recheck_rounds} more times (marked re-timed; each side's fastest median kept)"
              if args.recheck else "")]
    summaries = []
    for (group, b), group_rows in rows.items():
        name = "whole models" if group == "models" else group.replace("_patch16_224", "").replace(
            "_patch4_window7_224", "")
        summaries.append(table(out, f"{name}, batch {b}", [
            ((key if group != "models" else "–") + (f" (re-timed, {len(a)} rounds)"
                                                     if ((group, b), key) in retimed else ""), d, f, min(a), min(t))
            for key, (d, f, a, t) in group_rows.items()]))
    out.append("\n### Summary\n")
    out += [f"- {line}" for line in summaries]
    if memory_rows:
        out.append(f"\n### Peak resident memory, batch {args.memory_batch}\n")
        out.append(f"The whole SN-Net ({families[0]}) in memory (every anchor and stitching layer, as a "
                   "server holds it), one stitch run four times; each side in its own process; the "
                   f"kernel's max RSS (a child's starts from its parent's, here {parent_mb:.0f} MiB).\n")
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
