"""Calibrate the trait error bars (`interval:` of conf/measure, `rootseg.measure.intervals`) on SegRoot's val scans.

One checkpoint, one prediction per val scan (probabilities kept in memory), then for a grid of half-widths
delta the traits of the masks at t - delta and t + delta (cleaned as every command cleans, conf/measure's
`clean:`) against the annotation's: per delta and trait the coverage (share of scans whose annotation trait
lies in [low, high]). The chosen delta is the smallest whose root-length coverage reaches `--target`; the flag's
cutoff on the relative width of the root-length interval is the highest that still leaves most (> 50 %) of the
total |root-length error| on the flagged scans, so as few scans as possible are flagged.

    python experiments/segroot_study/calibrate_intervals.py [--ckpt segroot-ci600] \
        [--data ../shared/datasets/segroot] [--dpi 300] [--step tile]

Writes experiments/segroot_study/results/intervals_calibration.json and .md; put the chosen values into
conf/measure/default.yaml (`interval.delta`, `interval.unreliable_width`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.io.atomic import write_text
from rootseg.io.images import open_image
from rootseg.io.masks import read_binary_mask
from rootseg.io.tables import markdown_table, write_json
from rootseg.measure.agreement import AGREEMENT_TRAITS
from rootseg.measure.intervals import FLAG_COLUMN, WIDTH_COLUMN, IntervalSettings, interval_coverage, interval_traits
from rootseg.measure.settings import mm_per_pixel_from_dpi, resolve_traits
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DELTAS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
log = logging.getLogger("calibrate_intervals")


def measure_scans(args: argparse.Namespace, settings: TraitSettings) -> tuple[float, list[dict[str, Any]]]:
    """Per val scan: the annotation's traits and the prediction's at every threshold of the grid."""
    data = Path(args.data)
    stems = json.loads((data / "split.json").read_text())["val"]
    mm = mm_per_pixel_from_dpi(args.dpi)
    step = args.step if args.step == "tile" else int(args.step)
    predictor = Predictor.from_checkpoint(args.ckpt, InferenceSettings(step=step, device=args.device))
    t = float(predictor.threshold)
    thresholds = sorted({t, *(cut for d in DELTAS for cut in IntervalSettings(d).thresholds(t))})
    scans = []
    for stem in stems:
        start = time.perf_counter()
        image_path = data / "images" / f"{stem}.jpg"
        probs = predictor.probabilities(open_image(image_path), image_path)
        target = read_binary_mask(data / "masks" / f"{stem}-mask.jpg")
        labelled = target != 255
        measured = {}
        for threshold in thresholds:
            pixels = pixel_traits((probs >= threshold) & labelled, valid=labelled, clean=settings.clean)
            measured[round(threshold, 6)] = traits_from_pixels(pixels, mm, settings)
        truth = traits_from_pixels(pixel_traits(target == 1, valid=labelled, clean=settings.clean), mm, settings)
        scans.append({"name": stem, "truth": truth, "pred": measured})
        log.info("%s: %d thresholds in %.1f s", stem, len(thresholds), time.perf_counter() - start)
    return t, scans


def rows_at(scans: list[dict[str, Any]], t: float, delta: float) -> list[dict[str, Any]]:
    """eval's per_image rows (true_<trait>, pred_<trait>, pred_<trait>_low/_high, pred_interval_width) at delta;
    no flag yet (0)."""
    rows = []
    for scan in scans:
        pred = scan["pred"]
        center, loose, strict = (pred[round(x, 6)] for x in (t, *IntervalSettings(delta).thresholds(t)))
        bounds = interval_traits(center, loose, strict, math.inf)
        row = {"name": scan["name"], **{f"true_{k}": v for k, v in scan["truth"].items()}}
        row.update({f"pred_{k}": v for k, v in {**center, **bounds}.items()})
        rows.append(row)
    return rows


def choose_cutoff(rows: list[dict[str, Any]], trait: str = "length_px") -> tuple[float, list[dict[str, Any]]]:
    """The highest cutoff on the relative width whose flagged scans hold > 50 % of the total |error|, halfway
    between the widest unflagged and the narrowest flagged scan; and the table of every possible cutoff."""
    widths = np.array([float(r[f"pred_{WIDTH_COLUMN}"]) for r in rows])
    error = np.array([abs(float(r[f"pred_{trait}"]) - float(r[f"true_{trait}"])) for r in rows])
    order = np.argsort(widths)[::-1]  # widest first
    table, chosen = [], math.inf
    for k in range(len(order) + 1):
        flagged = order[:k]
        share = float(error[flagged].sum() / error.sum()) if error.sum() > 0 else math.nan
        below = widths[order[k]] if k < len(order) else 0.0
        cutoff = math.inf if k == 0 else round((widths[order[k - 1]] + below) / 2, 3)
        table.append({"cutoff": cutoff, "flagged": k, "flagged_share": k / len(rows), "error_share": share})
        if chosen == math.inf and share > 0.5:
            chosen = cutoff
    return chosen, table


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    cfg = OmegaConf.load(ROOT / "conf" / "measure" / "default.yaml")
    settings = resolve_traits(cfg)
    t, scans = measure_scans(args, settings)
    grid = []
    for delta in DELTAS:
        rows = [{**row, f"pred_{FLAG_COLUMN}": 0} for row in rows_at(scans, t, delta)]
        coverage = interval_coverage(rows, AGREEMENT_TRAITS)
        grid.append({"delta": delta, **{c["trait"]: c["coverage"] for c in coverage}})
    reaching = [g for g in grid if g["length_px"] >= args.target]
    best = reaching[0] if reaching else grid[-1]
    rows = rows_at(scans, t, best["delta"])
    cutoff, cutoffs = choose_cutoff(rows)
    for row in rows:
        row[f"pred_{FLAG_COLUMN}"] = int(row[f"pred_{WIDTH_COLUMN}"] > cutoff)
    return {
        "checkpoint": str(args.ckpt),
        "data": str(args.data),
        "split": "val",
        "n_images": len(scans),
        "threshold": t,
        "target_length_coverage": args.target,
        "reached": bool(reaching),
        "coverage_by_delta": grid,
        "delta": best["delta"],
        "unreliable_width": cutoff,
        "cutoffs": cutoffs,
        "at_chosen": interval_coverage(rows, AGREEMENT_TRAITS),
        "per_image": [
            {k: row[k] for k in ("name", "true_length_px", "pred_length_px", "pred_length_px_low")}
            | {k: row[k] for k in ("pred_length_px_high", f"pred_{WIDTH_COLUMN}", f"pred_{FLAG_COLUMN}")}
            for row in rows
        ],
    }


def markdown(result: dict[str, Any]) -> str:
    def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]

    return (
        f"# Trait intervals calibrated on SegRoot val ({result['n_images']} scans, {result['checkpoint']}, "
        f"threshold {result['threshold']:g})\n\n## Coverage by delta (share of scans whose annotation trait lies in "
        f"the interval)\n\n{markdown_table(rounded(result['coverage_by_delta']))}\n\n"
        f"Chosen: delta = {result['delta']:g} (smallest reaching {result['target_length_coverage']:.0%} on "
        f"length_px: {'yes' if result['reached'] else 'no, the widest'}), unreliable_width = "
        f"{result['unreliable_width']:g}.\n\n## At the chosen values\n\n{markdown_table(rounded(result['at_chosen']))}"
        f"\n\n## Flag cutoffs (root length)\n\n{markdown_table(rounded(result['cutoffs']))}\n\n## Per scan\n\n"
        f"{markdown_table(rounded(result['per_image']))}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="segroot-ci600", help="a checkpoint file or a shipped model's name")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "segroot"))
    parser.add_argument("--dpi", type=float, default=300.0)
    parser.add_argument("--step", default="tile", help="tile (Smith's grid, fastest) or a pixel step")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--target", type=float, default=0.8, help="root-length coverage to reach")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = calibrate(args)
    out = Path(args.out)
    write_json(out / "intervals_calibration.json", result)
    write_text(out / "intervals_calibration.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
