"""How far each named segmentation failure moves the root traits, before and after robust measurement: SegRoot's
val masks damaged to a Dice loss of 0.05 and 0.15 (`rootseg.measure.degrade`; junction breaks at every
junction), per failure and trait the median relative error against the same mask undamaged, measured raw
(`clean=None`, rootseg before issue 25) and with the commands' defaults (`Cleaning()`). Also what the defaults
change on the undamaged masks themselves. Prints JSON.

    python benchmarks/trait_robustness.py [--masks 13] [--split val]

So that a run takes minutes on one core, each mask is cut to the `--window` square (1024 px) that holds most
of its root (the failures are calibrated on the cut; 0: whole masks); `--masks` takes the first n of the split.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from rootseg.io.masks import read_binary_mask
from rootseg.measure.cleaning import Cleaning
from rootseg.measure.degrade import FAILURES, degrade
from rootseg.measure.traits import root_traits

REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"
TRAITS = ("length_px", "tips", "branch_points", "connected_roots", "diameter_median_px", "projected_area_px2")
LOSSES = (0.05, 0.15)


def load(name: str, window: int) -> np.ndarray:
    """A SegRoot mask cut to the `window` x `window` square holding most root (the whole mask when 0)."""
    mask = read_binary_mask(SEGROOT / "masks" / f"{name}-mask.jpg", 127) == 1
    if window <= 0 or min(mask.shape) <= window:
        return mask
    density = ndi.uniform_filter(mask.astype(np.float32), window, mode="constant")
    half = window // 2
    inner = density[half : mask.shape[0] - half, half : mask.shape[1] - half]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return mask[y : y + window, x : x + window]


def measure(mask: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        "before": {k: root_traits(mask)[k] for k in TRAITS},
        "after": {k: root_traits(mask, clean=Cleaning())[k] for k in TRAITS},
    }


def relative(value: float, reference: float) -> float:
    return (value - reference) / reference if reference else (0.0 if value == reference else float("nan"))


def summarise(errors: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per trait: median signed and median absolute relative error over masks."""
    out = {}
    for trait in TRAITS:
        values = np.array([e[trait] for e in errors], np.float64)
        values = values[np.isfinite(values)]
        median, median_abs = float(np.median(values)), float(np.median(np.abs(values)))
        out[trait] = {"median": round(median, 4), "median_abs": round(median_abs, 4)}
    return out


def run(names: list[str], window: int) -> dict[str, Any]:
    cases = [(f, loss) for f in FAILURES for loss in ((None,) if f == "junctions" else LOSSES)]
    errors: dict[str, dict[str, list]] = {f"{f}@{loss}": {"before": [], "after": [], "loss": []} for f, loss in cases}
    undamaged: list[dict[str, float]] = []
    for index, name in enumerate(names):
        mask = load(name, window)
        clean = measure(mask)
        undamaged.append({t: relative(clean["after"][t], clean["before"][t]) for t in TRAITS})
        for failure, loss in cases:
            damaged, reached = degrade(mask, failure, loss or 0.05, seed=index)
            traits = measure(damaged)
            record = errors[f"{failure}@{loss}"]
            record["loss"].append(reached)
            for when in ("before", "after"):
                record[when].append({t: relative(traits[when][t], clean[when][t]) for t in TRAITS})
    results = {
        key: {
            "dice_loss_median": round(float(np.median(record["loss"])), 4),
            "before": summarise(record["before"]),
            "after": summarise(record["after"]),
        }
        for key, record in errors.items()
    }
    return {"undamaged_defaults_vs_raw": summarise(undamaged), "failures": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=13, help="the first n masks of the split")
    parser.add_argument("--window", type=int, default=1024, help="px; 0: whole 2550 x 2273 masks")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    args = parser.parse_args()
    names = json.loads((SEGROOT / "split.json").read_text())[args.split][: args.masks]
    started = time.perf_counter()
    out = run(names, args.window)
    out.update({"split": args.split, "masks": len(names), "window": args.window, "defaults": Cleaning().__dict__})
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
