"""Training augmentation throughput: rootseg's coarse elastic grid vs Smith et al.'s full-resolution one.

Both sides run the full training transform on 572 px RGB tiles with masks, one tile at a time on ONE core
(cv2 and OpenMP pinned to one thread, so "per core" is honest): elastic grid (always applied, p = 1, on
both sides), the same albumentations ColorJitter, and the same min-max normalisation to [-0.5, 0.5].

- `fast`: `rootseg.datamodules.transforms.smith2020_transform(elastic_p=1)` - Gaussian-smoothed displacement
  drawn on a coarse grid (sigma / 4 px cells) and upsampled, then `cv2.remap`.
- `reference`: Smith's elastic grid as RootPainter's `elastic.py` does it, written here: per axis a
  full-resolution U(-1, 1) field on the tile padded by 60 px (reflect), `scipy.ndimage.gaussian_filter`
  (mode constant) times alpha, then `scipy.ndimage.map_coordinates` (order 1 per image channel, order 0
  for the mask), padding cropped off.

Both draw gamma ~ U(0, 1) and intensity ~ U(0.4, 1) per tile and set sigma = 15 + 45 gamma,
alpha = (200 + 2300 gamma) * intensity. The two are timed in interleaved rounds, so background load on a
shared machine hits both. A statistics check compares the mean std of dx over many draws at gamma 0,
0.5 and 0.95 (intensity 1). Prints one JSON object; `ratio` = fast tiles/s / reference tiles/s.

    python benchmarks/augment.py --quick      # ~1 min on one core
    python benchmarks/augment.py              # more tiles and draws
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/scipy load: one core
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.ndimage import gaussian_filter, map_coordinates  # noqa: E402

from rootseg.datamodules.transforms import coarse_displacement, smith2020_transform, smith_elastic_params  # noqa: E402
from rootseg.synthetic.generator import generate_sample  # noqa: E402

cv2.setNumThreads(1)

TILE = 572
PADDING = 60  # RootPainter's elastic.py pads each side before deforming, so borders pull in real pixels
JITTER = (0.3, 0.3, 0.2, 0.001)  # smith2020_transform's default


def normalise(image: np.ndarray) -> np.ndarray:
    """Min-max to [-0.5, 0.5] per tile (Smith et al.; rootseg does this in UNet.forward): same on both sides."""
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    return (image - low) / max(high - low, 1e-6) - 0.5


# ------------------------------------------------------------------------------------ reference (Smith)
def reference_displacement(
    shape: tuple[int, int], sigma: float, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution field per axis: alpha * gaussian_filter(U(-1, 1), sigma, mode constant), float64."""
    dx = gaussian_filter(rng.uniform(-1.0, 1.0, shape), sigma, mode="constant") * alpha
    dy = gaussian_filter(rng.uniform(-1.0, 1.0, shape), sigma, mode="constant") * alpha
    return dy, dx


def reference_elastic(
    image: np.ndarray, mask: np.ndarray, sigma: float, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """RootPainter's elastic grid: pad, displace every pixel, map_coordinates, crop."""
    p = PADDING
    padded = np.pad(image, ((p, p), (p, p), (0, 0)), mode="reflect")
    padded_mask = np.pad(mask, ((p, p), (p, p)), mode="reflect")
    h, w = padded.shape[:2]
    dy, dx = reference_displacement((h, w), sigma, alpha, rng)
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([(y + dy).ravel(), (x + dx).ravel()])
    out = np.empty_like(padded)
    for c in range(padded.shape[2]):
        out[..., c] = map_coordinates(padded[..., c], coords, order=1).reshape(h, w)
    out_mask = map_coordinates(padded_mask, coords, order=0).reshape(h, w)
    return out[p:-p, p:-p], out_mask[p:-p, p:-p]


def make_reference(seed: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Reference transform: elastic (p = 1) + the same ColorJitter + normalisation."""
    rng = np.random.default_rng(seed)
    draw = random.Random(seed)
    brightness, contrast, saturation, hue = JITTER
    jitter = A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=1.0)
    jitter.set_random_seed(seed)

    def transform(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sigma, alpha = smith_elastic_params(draw.random(), draw.uniform(0.4, 1.0))
        image, mask = reference_elastic(image, mask, sigma, alpha, rng)
        return normalise(jitter(image=image)["image"]), mask

    return transform


def make_fast(seed: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """rootseg's training transform (elastic forced on, p = 1) + normalisation."""
    compose = smith2020_transform(elastic_p=1.0, jitter=JITTER)
    compose.set_random_seed(seed)

    def transform(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = compose(image=image, mask=mask)
        return normalise(out["image"]), out["mask"]

    return transform


# ---------------------------------------------------------------------------------------------- timing
def tiles(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic soil-and-root tiles (content hardly matters for speed, but masks should hold root)."""
    out = []
    for i in range(n):
        sample = generate_sample(np.random.SeedSequence([seed, i]), (TILE, TILE))
        out.append((np.ascontiguousarray(sample.image), (sample.mask * np.uint8(1)).astype(np.uint8)))
    return out


def time_transforms(
    transforms: dict[str, Callable], data: list[tuple[np.ndarray, np.ndarray]], rounds: int, per_round: int
) -> dict[str, list[float]]:
    """Seconds per tile in each round; the transforms alternate round by round (same background load)."""
    seconds: dict[str, list[float]] = {name: [] for name in transforms}
    k = 0
    for _ in range(rounds):
        for name, transform in transforms.items():
            start = time.perf_counter()
            for j in range(per_round):
                image, mask = data[(k + j) % len(data)]
                transform(image, mask)
            seconds[name].append((time.perf_counter() - start) / per_round)
        k += per_round
    return seconds


def component_times(data: list[tuple[np.ndarray, np.ndarray]], n: int) -> dict[str, float]:
    """Milliseconds per tile of each stage of the fast transform (where its time goes)."""
    from rootseg.datamodules.transforms import SmithElasticGrid

    elastic = A.Compose([SmithElasticGrid(p=1.0)])
    elastic.set_random_seed(0)
    jitter = A.Compose([A.ColorJitter(*JITTER, p=1.0)])
    jitter.set_random_seed(0)
    stages: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
        "elastic_grid": lambda im, m: elastic(image=im, mask=m),
        "color_jitter": lambda im, m: jitter(image=im),
        "normalise": lambda im, m: normalise(im),
    }
    out = {}
    for name, stage in stages.items():
        start = time.perf_counter()
        for i in range(n):
            stage(*data[i % len(data)])
        out[name] = round(1000 * (time.perf_counter() - start) / n, 3)
    return out


def displacement_statistics(draws: int, gammas: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Mean over draws of std(dx) on the 572 px tile, fast vs reference, at intensity 1.

    Both fields are drawn on the tile padded by 60 px and cropped, as SmithElasticGrid and RootPainter do;
    the `unpadded` pair draws both on the bare tile (the case tests/test_transforms.py checks)."""
    from rootseg.datamodules.transforms import SmithElasticGrid

    pad = SmithElasticGrid().padding
    rng = np.random.default_rng(seed)
    side, crop = TILE + 2 * PADDING, slice(PADDING, PADDING + TILE)
    out: dict[str, Any] = {"padding_fast": pad, "padding_reference": PADDING}
    for gamma in gammas:
        sigma, alpha = smith_elastic_params(gamma, 1.0)
        grown = TILE + 2 * pad
        fast = [
            coarse_displacement((grown, grown), sigma, alpha, rng)[1][pad : pad + TILE, pad : pad + TILE].std()
            for _ in range(draws)
        ]
        ref = [reference_displacement((side, side), sigma, alpha, rng)[1][crop, crop].std() for _ in range(draws)]
        fast_bare = [coarse_displacement((TILE, TILE), sigma, alpha, rng)[1].std() for _ in range(draws)]
        ref_bare = [reference_displacement((TILE, TILE), sigma, alpha, rng)[1].std() for _ in range(draws)]
        f, r, fb, rb = (float(np.mean(v)) for v in (fast, ref, fast_bare, ref_bare))
        out[f"gamma_{gamma}"] = {
            "sigma": sigma,
            "alpha": alpha,
            "fast_dx_std_px": round(f, 3),
            "reference_dx_std_px": round(r, 3),
            "rel_diff": round((f - r) / r, 4),
            # spread of the per-draw std: how far apart the two means may fall by chance alone
            "reference_sem_rel": round(float(np.std(ref) / np.sqrt(draws) / r), 4),
            "unpadded_fast_dx_std_px": round(fb, 3),
            "unpadded_reference_dx_std_px": round(rb, 3),
            "unpadded_rel_diff": round((fb - rb) / rb, 4),
        }
    out["max_abs_rel_diff"] = max(abs(v["rel_diff"]) for v in out.values() if isinstance(v, dict))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tiles and draws (~1 min)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds")
    parser.add_argument("--per-round", type=int, default=None, help="tiles per transform per round")
    parser.add_argument("--draws", type=int, default=None, help="displacement fields per gamma (statistics)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rounds = args.rounds or (4 if args.quick else 10)
    per_round = args.per_round or (5 if args.quick else 10)
    draws = args.draws or (20 if args.quick else 100)

    data = tiles(8, args.seed)
    transforms = {"fast": make_fast(args.seed), "reference": make_reference(args.seed)}
    for transform in transforms.values():  # warm-up: imports, allocator, cv2 kernel dispatch
        transform(*data[0])
    load_before = os.getloadavg()
    seconds = time_transforms(transforms, data, rounds, per_round)
    load_after = os.getloadavg()

    result: dict[str, Any] = {
        "benchmark": "augment",
        "tile": TILE,
        "threads": 1,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "rounds": rounds,
        "tiles_per_round": per_round,
        "elastic_p": 1.0,
    }
    for name, values in seconds.items():
        median = float(np.median(values))
        result[name] = {
            "ms_per_tile_median": round(1000 * median, 2),
            "ms_per_tile_best_round": round(1000 * min(values), 2),
            "tiles_per_s_per_core": round(1 / median, 2),
        }
    result["ratio"] = round(result["fast"]["tiles_per_s_per_core"] / result["reference"]["tiles_per_s_per_core"], 2)
    result["goal_ratio"] = 5.0
    result["meets_goal"] = result["ratio"] >= 5.0
    result["fast_components_ms"] = component_times(data, 10 if args.quick else 40)
    result["displacement_std"] = displacement_statistics(draws, (0.0, 0.5, 0.95), args.seed + 1)
    result["versions"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "opencv": cv2.__version__,
        "albumentations": A.__version__,
    }
    print(json.dumps(result, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
