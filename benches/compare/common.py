"""What the side-by-side comparisons with PyTorch share: the workspace root, running commands
there, `cargo bench` and criterion's medians, and PyTorch's thread count.

Imported by the scripts beside it (`from common import ...`; Python puts a script's folder on
`sys.path`), never installed.
"""

import functools
import importlib.util
import json
import os
import subprocess
import sys

# The workspace root: this file is benches/compare/common.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cmd):
    """Runs `cmd` in the workspace root, echoed on stderr; returns its stdout."""
    print("$", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def cargo_bench(bench, features):
    """`cargo bench -p snnet-benches --bench BENCH [--features FEATURES]`, its output shown."""
    cmd = ["cargo", "bench", "-p", "snnet-benches", "--bench", bench]
    if features:
        cmd += ["--features", features]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)


def criterion_group(group):
    """Criterion's folder of benchmark group GROUP. Cargo resolves a relative
    CARGO_TARGET_DIR against its working directory, ROOT here."""
    target = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"))
    return os.path.join(target, "criterion", group)


def criterion_median(path):
    """The median (ns) of criterion's estimates.json under PATH (a benchmark's folder), or
    None where it has not run."""
    path = os.path.join(path, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def torch_threads(threads=None):
    """Imports torch with THREADS intra-op threads (default: every core) and returns it."""
    import torch

    torch.set_num_threads(threads or os.cpu_count())
    return torch


@functools.cache
def load_script(path):
    """The Python script at PATH (relative to ROOT) as a module, e.g. a fixture script whose
    function a comparison reuses; its `main` does not run. Loaded once."""
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
