"""Whole-image U-Net inference: what half-tile Gaussian blending costs in speed and buys in accuracy.

Throughput (default): megapixels/s of `sliding_window_probs` on a random image, for Smith et al.'s
non-overlapping grid (step = tile_out, constant weights: every pixel predicted once) and nnU-Net-style
blending (step = tile_out // 2, Gaussian weights: ~4x the tiles), and with `--tta` blending plus flip
test-time augmentation (`blended_tta`: 4 flips, ~16x the grid's network passes), `predict tta=true`'s setting.
Random weights: speed does not depend on them. Prints one JSON object per device with `ratio_to_grid` =
blended MP/s / grid MP/s.

    python benchmarks/predict.py --quick                 # unet_tiny, 1024x1024, CPU (+ GPU if any), < 3 min
    python benchmarks/predict.py --net smith --size 2273 2550 --device cuda

Accuracy (`--segroot-compare CKPT`): pooled F1 (every labelled pixel of the split counted together) of a
trained checkpoint on the SegRoot val images (split.json "val"; masks/<stem>-mask.jpg, grey > 127 = root)
with both schemes, plus the mean per-image F1 and the seconds each took. Prints JSON.

    python benchmarks/predict.py --segroot-compare logs/train/runs/X/checkpoints/last.ckpt [--limit 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rootseg.tiling.grid import frame_shape, tile_grid
from rootseg.tiling.window import sliding_window_probs

REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"

# name -> (UNet kwargs, tile_in, tile_out); tiny is conf/model/net/unet_tiny.yaml with unet_demo's tiles;
# micro only for smoke runs of the script (experiments/gpu/run.sh --smoke)
NETS: dict[str, tuple[dict[str, int], int, int]] = {
    "micro": ({"base_channels": 4, "depth": 2, "groups": 4}, 100, 60),
    "tiny": ({"base_channels": 8, "depth": 3, "groups": 8}, 276, 188),
    "smith": ({"base_channels": 64, "depth": 4, "groups": 32}, 572, 388),
}


def schemes(tile_out: int, tta: bool = False) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "grid": {"step": tile_out, "blend": "constant"},
        "blended": {"step": tile_out // 2, "blend": "gaussian"},
    }
    if tta:
        out["blended_tta"] = {"step": tile_out // 2, "blend": "gaussian", "tta": True}
    return out


def devices(choice: str) -> list[torch.device]:
    if choice == "all":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    if choice == "auto":
        return [torch.device("cuda" if torch.cuda.is_available() else "cpu")]
    return [torch.device(choice)]


def tile_count(h: int, w: int, tile_out: int, step: int) -> int:
    return len(tile_grid(h, w, tile_out, step))


# ------------------------------------------------------------------------------------------ throughput
def throughput(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rootseg.models.unet import UNet

    kwargs, tile_in, tile_out = NETS[args.net]
    torch.manual_seed(0)
    net = UNet(**kwargs).eval()
    h, w = args.size
    image = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
    results = []
    for device in devices(args.device):
        net.to(device)

        def predict_tiles(tiles: torch.Tensor) -> torch.Tensor:
            return torch.softmax(net(tiles).float(), dim=1)[:, 1]

        batch_size = args.batch_size or (4 if device.type == "cpu" else 16)
        result: dict[str, Any] = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "cpu_threads": torch.get_num_threads(),
            "net": args.net,
            "tile_in": tile_in,
            "tile_out": tile_out,
            "size": [h, w],
            "megapixels": h * w / 1e6,
            "batch_size": batch_size,
            "repeats": args.repeats,
            "autocast_bf16": device.type == "cuda",
            "load_average_1min": round(os.getloadavg()[0], 2),  # > cpu_threads: timings are contended
        }
        runs = {
            name: dict(tile_in=tile_in, tile_out=tile_out, batch_size=batch_size, device=device, model=net, **scheme)
            for name, scheme in schemes(tile_out, args.tta).items()
        }
        for run in runs.values():  # warm-up: allocator, oneDNN/cuDNN kernel choice
            sliding_window_probs(image[: tile_in * 2, : tile_in * 2], predict_tiles, **run)
        # Interleaved repeats, so both schemes see the same background load on a shared machine.
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                sliding_window_probs(image, predict_tiles, **run)  # returns CPU tensors: synchronised
                times[name].append(time.perf_counter() - start)
        for name, scheme in schemes(tile_out, args.tta).items():
            best = min(times[name])
            tiles = tile_count(h, w, tile_out, scheme["step"])
            result[name] = {
                **scheme,
                "tiles": tiles,
                "frame": list(frame_shape(h, w, tile_out, scheme["step"])),
                "seconds_best": round(best, 4),
                "seconds_median": round(float(np.median(times[name])), 4),
                "seconds_all": [round(t, 4) for t in times[name]],
                "megapixels_per_s": round(h * w / 1e6 / best, 4),
                "tiles_per_s": round(tiles / best, 2),
            }
        result["ratio_to_grid"] = round(result["blended"]["megapixels_per_s"] / result["grid"]["megapixels_per_s"], 4)
        if args.tta:
            tta_rate = result["blended_tta"]["megapixels_per_s"]
            result["tta_ratio_to_grid"] = round(tta_rate / result["grid"]["megapixels_per_s"], 4)
        result["tile_ratio"] = round(result["blended"]["tiles"] / result["grid"]["tiles"], 4)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------- SegRoot
def _counts(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int]:
    valid = target != 255
    truth = (target == 1) & valid
    pred = pred & valid
    return int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def segroot_compare(args: argparse.Namespace) -> dict[str, Any]:
    from rootseg.io.images import read_image
    from rootseg.io.masks import read_mask
    from rootseg.tasks.checkpoints import load_module

    split_path = SEGROOT / "split.json"
    if not split_path.is_file():
        raise SystemExit(f"SegRoot not found at {SEGROOT} (set ROOTSEG_SHARED to the shared folder)")
    stems = json.loads(split_path.read_text())["val"]
    if args.limit:
        stems = stems[: args.limit]
    module = load_module(args.segroot_compare, expected_kind="unet")
    device = devices("auto" if args.device == "all" else args.device)[0]
    module.to(device)
    threshold = float(getattr(module, "threshold", 0.5))
    pooled = {name: [0, 0, 0] for name in schemes(module.tile_out)}
    per_image: dict[str, list[float]] = {name: [] for name in pooled}
    seconds = {name: 0.0 for name in pooled}
    for stem in stems:
        image = read_image(SEGROOT / "images" / f"{stem}.jpg")
        target = read_mask(SEGROOT / "masks" / f"{stem}-mask.jpg")
        for name, scheme in schemes(module.tile_out).items():
            start = time.perf_counter()
            probs = sliding_window_probs(
                image,
                module.predict_tiles,
                tile_in=module.tile_in,
                tile_out=module.tile_out,
                batch_size=args.batch_size or 4,
                device=device,
                model=module,
                **scheme,
            )
            seconds[name] += time.perf_counter() - start
            tp, fp, fn = _counts(probs.numpy() >= threshold, target)
            pooled[name] = [a + b for a, b in zip(pooled[name], (tp, fp, fn))]
            per_image[name].append(_f1(tp, fp, fn))
        print(f"{stem}: " + "  ".join(f"{n} F1 {v[-1]:.4f}" for n, v in per_image.items()), file=sys.stderr)
    result: dict[str, Any] = {
        "checkpoint": str(args.segroot_compare),
        "images": len(stems),
        "device": str(device),
        "threshold": threshold,
        "tile_in": module.tile_in,
        "tile_out": module.tile_out,
        "masks": "as shipped (grey > 127), no dilation",
    }
    for name, scheme in schemes(module.tile_out).items():
        tp, fp, fn = pooled[name]
        result[name] = {
            **scheme,
            "f1_pooled": round(_f1(tp, fp, fn), 5),
            "f1_per_image_mean": round(float(np.mean(per_image[name])), 5),
            "precision": round(tp / (tp + fp), 5) if tp + fp else None,
            "recall": round(tp / (tp + fn), 5) if tp + fn else None,
            "seconds": round(seconds[name], 2),
        }
    result["f1_pooled_gain"] = round(result["blended"]["f1_pooled"] - result["grid"]["f1_pooled"], 5)
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="unet_tiny on 1024x1024, 2 repeats (< 3 min on CPU)")
    parser.add_argument(
        "--net", choices=sorted(NETS), default="tiny", help="random-weight U-Net (default tiny; micro: smoke runs)"
    )
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image size (default 2273 2550)")
    parser.add_argument("--device", default="all", help="all (CPU, and GPU when present), auto, cpu, cuda")
    parser.add_argument("--batch-size", type=int, default=None, help="tiles per batch (default 4 CPU, 16 GPU)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per scheme, best reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--tta", action="store_true", help="also time blending + flip TTA (blended_tta)")
    parser.add_argument("--segroot-compare", metavar="CKPT", help="pooled val F1 on SegRoot: blended vs grid")
    parser.add_argument("--limit", type=int, default=None, help="--segroot-compare: first N val images only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.segroot_compare:
        segroot_compare(args)
        return 0
    if args.quick:
        if args.net == "smith":
            parser.error("--quick times the tiny net; drop --quick for --net smith")
        args.size = args.size or [1024, 1024]
        args.repeats = args.repeats or 2
    args.size = args.size or [2273, 2550]
    args.repeats = args.repeats or 3
    throughput(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
