#!/usr/bin/env python3
"""Least-squares initialisation of all 68 DeiT-Ti/S/B stitching cuts: Rust vs PyTorch.

Usage (dev machine; needs `pip install torch`):

    python3 benches/compare/compare_lstsq.py [--features lapack] [--skip-cargo] [--reps 3]

Runs `cargo bench -p snnet-benches --bench lstsq` (unless --skip-cargo) and reads criterion's
median per backend (from `$CARGO_TARGET_DIR`, default `target/`, under the workspace root), then times the reference's way on the same shapes with 2 threads
(`torch.set_num_threads(2)`): for every cut (j, k), `ps_inv(front[j], end[k-1])` as in
`stitching_deit/utils.py` (float32, a `torch.ones` column, `torch.linalg.pinv`, `.T`, then
`W = M[:, :-1]`, `b = M[:, -1]`), and the cuts that share a layer averaged. That recomputes the
SVD pseudo-inverse for every cut, as the reference does; `--reuse` also times a variant that
computes `pinv` once per source block (the factorisation reuse the Rust solver does).

Features: 19,700 rows (100 images x 197 tokens), Ti blocks c=192, S c=384, B c=768, random with
per-token factors shared across channels (the time does not depend on the values).
"""

import argparse
import os
import statistics
import time

from common import cargo_bench, criterion_group, criterion_median, load_script, torch_threads

ROWS = 19_700
DEPTH = 12
GROUP = "lstsq_deit_ti_s_b_68_cuts"


def criterion_results():
    base = criterion_group(GROUP)
    out = {}
    if not os.path.isdir(base):
        return out
    for backend in sorted(os.listdir(base)):
        median = criterion_median(os.path.join(base, backend, str(ROWS)))
        if median is not None:
            out[backend] = median / 1e9  # ns -> s
    return out


def cuts():
    """(j, k, layer) of one anchor pair, in the reference's order."""
    out = [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    for n in range(1, DEPTH - 1):
        out += [(n, n + 1, n), (n + 1, n, n), (n + 1, n + 1, n)]
    return out


def ps_inv(x1, x2):
    """The reference's `ps_inv` (stitching_deit/utils.py): the copy the least-squares fixtures
    were made with, crates/snnet-lstsq/tests/fixtures/export_lstsq.py."""
    return load_script("crates/snnet-lstsq/tests/fixtures/export_lstsq.py").ps_inv(x1, x2)


def features(gen, width):
    import torch

    mean = torch.rand(width, generator=gen) * 2 - 1
    scale = 1.0 + 0.5 * (torch.rand(width, generator=gen) * 2 - 1)
    factors = torch.rand(ROWS, 4, generator=gen) * 2 - 1
    noise = torch.rand(ROWS, width, generator=gen) * 2 - 1
    shared = factors[:, torch.arange(width) % 4]
    return mean + scale * (0.6 * shared + 0.8 * noise)


def init_pair(front, end, reuse):
    """All layers of one anchor pair; `front[j]`, `end[k]` = input of the end anchor's block k."""
    import torch

    by_layer = {}
    if reuse:
        for j in range(DEPTH):
            x1 = torch.cat([front[j], torch.ones(ROWS, 1)], dim=1)
            pinv = torch.linalg.pinv(x1)
            for (jj, k, layer) in cuts():
                if jj == j:
                    m = (pinv @ end[k]).T
                    by_layer.setdefault(layer, []).append((m[:, :-1], m[:, -1]))
    else:
        for (j, k, layer) in cuts():
            by_layer.setdefault(layer, []).append(ps_inv(front[j], end[k]))
    return [
        (torch.stack([w for w, _ in parts]).mean(0), torch.stack([b for _, b in parts]).mean(0))
        for parts in by_layer.values()
    ]


def torch_times(reps, reuse):
    torch = torch_threads(2)
    gen = torch.Generator().manual_seed(0)
    small = [features(gen, 384) for _ in range(DEPTH + 1)]
    ti = [features(gen, 192) for _ in range(DEPTH)]
    big = [features(gen, 768) for _ in range(DEPTH)]
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        with torch.no_grad():
            layers = init_pair(ti, small[:DEPTH], reuse) + init_pair(small[1:], big, reuse)
        times.append(time.perf_counter() - start)
        assert len(layers) == 22
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default="", help="cargo features (e.g. lapack)")
    parser.add_argument("--skip-cargo", action="store_true", help="only read criterion's results")
    parser.add_argument("--reps", type=int, default=3, help="PyTorch repetitions (median)")
    parser.add_argument("--reuse", action="store_true", help="also time pinv once per source")
    args = parser.parse_args()

    if not args.skip_cargo:
        cargo_bench("lstsq", args.features)
    rust = criterion_results()

    import torch

    print(f"torch {torch.__version__}, 2 threads, {ROWS} rows, 68 cuts")
    rows = []
    ref = torch_times(args.reps, reuse=False)
    print("torch pinv per cut (s):", " ".join(f"{t:.2f}" for t in ref))
    rows.append(("torch pinv per cut (reference)", statistics.median(ref)))
    if args.reuse:
        reuse = torch_times(args.reps, reuse=True)
        print("torch pinv per source (s):", " ".join(f"{t:.2f}" for t in reuse))
        rows.append(("torch pinv per source block", statistics.median(reuse)))
    for backend, secs in rust.items():
        rows.append((f"snnet-lstsq {backend} (criterion median)", secs))

    print()
    print("| solver | all 68 cuts (s) | vs reference |")
    print("|---|---|---|")
    base = rows[0][1]
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} | {secs / base:.3f} |")


if __name__ == "__main__":
    main()
