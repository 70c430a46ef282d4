"""Which thinning rootseg's one skeleton uses: scikit-image's Zhang (its default), Lee, `thin`, or rootseg's
(`rootseg.measure.skeleton.skeletonize_mask`: Zhang's, Lee's on a connected root where Zhang's lost pixels).

scikit-image 0.26's default `skeletonize` (Zhang) deletes half of some 45 deg roots (scikit-image issues 6321,
7704). This measures each method against exact truth, per skeleton, with rootseg's own length (Kimura per
segment), tips and branch points (`rootseg.measure.skeleton.SkeletonGraph`, `rootseg.measure.traits`):

- `capsules`: N straight roots (pixel centres within w/2 of a 300 px segment), 2-12 px wide, 0-90 deg,
  random sub-pixel offsets: how many lose more than 10 % of their length, worst and mean relative error;
  `diagonal`: the same at 45 +- 0.5 deg, 3-8 px wide, where Zhang's thinning fails;
- `generator`: images of `rootseg.synthetic.generator` against their exact centreline length, the mask of
  every root (`root_mask`) and the visible mask (roots cut by soil grains): summed and per-image ratios
  (`skeleton_length`); on the clean 256 px images (no touching roots, no end near the border) the traits'
  length and how many images have their tips and branch points exact;
- `segroot`: seconds per 2550 x 2273 SegRoot annotation (the thinning alone, and `root_traits`), and the
  length each method gives summed over the masks.

    python benchmarks/skeleton_method.py [--capsules 248] [--diagonal 152] [--images 40] [--segroot 6] [--methods ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import rootseg.measure.skeleton as skeleton_module
from rootseg.measure.length import skeleton_length
from rootseg.measure.traits import root_traits

REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"
METHODS = ("zhang", "lee", "thin", "rootseg")


def _thin(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize, thin

    mask = np.asarray(mask, dtype=bool)
    if METHOD == "rootseg":
        return ROOTSEG(mask)
    if not mask.any():
        return np.zeros(mask.shape, bool)
    if METHOD == "thin":
        return thin(mask)
    return skeletonize(mask, method=METHOD)


METHOD = "zhang"
ROOTSEG = skeleton_module.skeletonize_mask
skeleton_module.skeletonize_mask = _thin  # every rootseg measurement below thins with METHOD
import rootseg.measure.length as length_module  # noqa: E402
import rootseg.measure.traits as traits_module  # noqa: E402

length_module.skeletonize_mask = _thin
traits_module.skeletonize_mask = _thin


def capsule(centre: tuple[float, float], angle: float, length: float, width: float, size: int = 400) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    dx, dy = length / 2 * math.cos(math.radians(angle)), length / 2 * math.sin(math.radians(angle))
    x0, y0, x1, y1 = centre[0] - dx, centre[1] - dy, centre[0] + dx, centre[1] + dy
    t = np.clip(((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / (length * length), 0, 1)
    return np.hypot(xx - (x0 + t * (x1 - x0)), yy - (y0 + t * (y1 - y0))) <= width / 2


def capsules(n: int, diagonal: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(3 if diagonal else 0)
    cases = [
        (
            rng.uniform(3, 8) if diagonal else rng.uniform(2, 12),
            45 + rng.uniform(-0.5, 0.5) if diagonal else rng.uniform(0, 90),
            (200 + rng.uniform(-1, 1), 200 + rng.uniform(-1, 1)),
        )
        for _ in range(n)
    ]
    masks = [capsule(c, a, 300, w) for w, a, c in cases]
    out = {}
    for method in METHODS:
        globals()["METHOD"] = method
        errors = np.array([skeleton_length(m) / 300 - 1 for m in masks])
        out[method] = {
            "lost_over_10_percent": int(np.count_nonzero(errors < -0.10)),
            "worst": round(float(errors.min()), 4),
            "mean_abs_error": round(float(np.abs(errors).mean()), 4),
        }
    return {"n": n, **out}


def generator(n: int, size: int) -> dict[str, Any]:
    from rootseg.synthetic.generator import generate_sample

    samples = [generate_sample(seed, (size, size)) for seed in range(n)]
    true = np.array([s.centreline_length for s in samples])
    small = [generate_sample(seed, (256, 256)) for seed in range(n)]  # at 256 px more images have no touching roots
    clean = [s for s in small if not s.truth["touching"] and s.truth["near_border"] == 0]
    clean_true = np.array([s.truth["centreline_length_px"] for s in clean])
    out: dict[str, Any] = {"n": n, "size": size, "clean_at_256": len(clean)}
    for method in METHODS:
        globals()["METHOD"] = method
        row = {}
        for key, masks in (("all_roots", [s.root_mask for s in samples]), ("visible", [s.mask > 0 for s in samples])):
            ratios = np.array([skeleton_length(m) for m in masks]) / true
            row[key] = {
                "sum_ratio": round(float((ratios * true).sum() / true.sum()), 4),
                "per_image_min": round(float(ratios.min()), 3),
                "per_image_max": round(float(ratios.max()), 3),
            }
        traits = [root_traits(s.root_mask) for s in clean]
        clean_ratio = np.array([t["length_px"] for t in traits]) / clean_true
        row["clean_length"] = {
            "sum_ratio": round(float((clean_ratio * clean_true).sum() / clean_true.sum()), 4),
            "per_image_min": round(float(clean_ratio.min()), 3),
            "per_image_max": round(float(clean_ratio.max()), 3),
        }
        row["tips_exact"] = sum(t["tips"] == s.truth["tips"] for t, s in zip(traits, clean))
        row["branch_points_exact"] = sum(t["branch_points"] == s.truth["branch_points"] for t, s in zip(traits, clean))
        out[method] = row
    return out


def segroot(n: int) -> dict[str, Any]:
    from rootseg.io.masks import read_mask

    paths = sorted((SEGROOT / "masks").glob("*"))[:n]
    if not paths:
        return {"skipped": f"no masks under {SEGROOT}"}
    masks = [read_mask(p) == 1 for p in paths]
    root_traits(masks[0][:64, :64])  # imports out of the timing
    out: dict[str, Any] = {"n": len(masks), "shape": list(masks[0].shape)}
    for method in METHODS:
        globals()["METHOD"] = method
        started = time.perf_counter()
        for mask in masks:
            _thin(mask)
        thinning = (time.perf_counter() - started) / len(masks)
        started = time.perf_counter()
        lengths = [root_traits(mask)["length_px"] for mask in masks]
        traits = (time.perf_counter() - started) / len(masks)
        out[method] = {
            "thinning_s": round(thinning, 3),
            "root_traits_s": round(traits, 3),
            "length_px_sum": round(float(sum(lengths)), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capsules", type=int, default=248)
    parser.add_argument("--diagonal", type=int, default=152)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--segroot", type=int, default=6)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    args = parser.parse_args()
    globals()["METHODS"] = tuple(args.methods.split(","))
    result = {
        "capsules": capsules(args.capsules),
        "diagonal": capsules(args.diagonal, diagonal=True),
        "generator": generator(args.images, args.size),
        "segroot": segroot(args.segroot),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
