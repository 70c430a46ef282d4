"""Calibrate the trait error bars (`interval:` of conf/measure, `rootseg.measure.intervals`) on SegRoot's val scans.

One checkpoint, one prediction per val scan, then the traits of the masks at every threshold of a grid (cleaned
as every command cleans, conf/measure's `clean:`) and the annotation's; these measurements are cached as JSON
(`--cache`, kept while the checkpoint's content, data, resolution, step and `clean:` stay the same), so a
rerun with another target costs seconds. Per delta of the grid, the margin m is the smallest
relative widening (low / (1 + m), high * (1 + m)) that puts the annotation's root length inside the interval for
`--target` of the scans (split conformal: the ceil(target * n)-th smallest widening each scan needs); the chosen
delta is the one whose widened root-length interval is narrowest (median relative width). Its coverage per trait
is reported in-sample and leave-one-out (m chosen on the other 12 scans, the honest estimate for a new scan).
The flag's cutoff on the relative width of the root-length interval is the highest whose flagged scans hold
more than half of the total relative root-length error, so as few scans as possible are flagged.

    python experiments/segroot_study/calibrate_intervals.py [--ckpt segroot-ci600] \
        [--data ../shared/datasets/segroot] [--dpi 300] [--step tile] [--target 0.8]

Writes experiments/segroot_study/results/intervals_calibration.json and .md; put the chosen values into
conf/measure/default.yaml (`interval.delta`, `interval.margin`, `interval.unreliable_width`).
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
from rootseg.io.files import sha256_file
from rootseg.io.images import open_image
from rootseg.io.masks import read_binary_mask
from rootseg.io.tables import markdown_table, write_json
from rootseg.measure.agreement import AGREEMENT_TRAITS
from rootseg.measure.intervals import FLAG_COLUMN, WIDTH_COLUMN, IntervalSettings, interval_coverage, interval_traits
from rootseg.measure.settings import mm_per_pixel_from_dpi, resolve_traits
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels
from rootseg.tasks.checkpoints import checkpoint_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DELTAS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
log = logging.getLogger("calibrate_intervals")


def _band(delta: float, margin: float = 0.0, cutoff: float = math.inf) -> IntervalSettings:
    """Interval settings of the grid, never the defaults being calibrated."""
    return IntervalSettings(delta, margin=margin, unreliable_width=cutoff)


def measure_scans(args: argparse.Namespace, settings: TraitSettings) -> dict[str, Any]:
    """Per val scan: the annotation's traits and the prediction's at every threshold of the grid (px columns)."""
    data = Path(args.data)
    stems = json.loads((data / "split.json").read_text())["val"]
    mm = mm_per_pixel_from_dpi(args.dpi)
    step = args.step if args.step == "tile" else int(args.step)
    predictor = Predictor.from_checkpoint(args.ckpt, InferenceSettings(step=step, device=args.device))
    t = float(predictor.threshold)
    thresholds = sorted({t, *(cut for d in DELTAS for cut in _band(d).thresholds(t))})
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
            measured[f"{threshold:.6f}"] = traits_from_pixels(pixels, mm, settings)
        truth = traits_from_pixels(pixel_traits(target == 1, valid=labelled, clean=settings.clean), mm, settings)
        scans.append({"name": stem, "truth": truth, "pred": measured})
        log.info("%s: %d thresholds in %.1f s", stem, len(thresholds), time.perf_counter() - start)
    return {"checkpoint": str(args.ckpt), "threshold": t, "scans": scans}


def rows_at(scans: list[dict[str, Any]], t: float, settings: IntervalSettings) -> list[dict[str, Any]]:
    """eval's per_image rows (true_<trait>, pred_<trait>, pred_<trait>_low/_high, width, flag) at `settings`."""
    rows = []
    for scan in scans:
        center, loose, strict = (scan["pred"][f"{x:.6f}"] for x in (t, *settings.thresholds(t)))
        row = {"name": scan["name"], **{f"true_{k}": v for k, v in scan["truth"].items()}}
        row.update({f"pred_{k}": v for k, v in {**center, **interval_traits(center, loose, strict, settings)}.items()})
        rows.append(row)
    return rows


def needed_margin(rows: list[dict[str, Any]], target: float, trait: str = "length_px") -> float:
    """The smallest relative widening that covers the reference in `target` of the rows (of a band, margin 0)."""
    need = []
    for row in rows:
        true, low, high = (float(row[k]) for k in (f"true_{trait}", f"pred_{trait}_low", f"pred_{trait}_high"))
        need.append(
            max(low / true - 1 if true > 0 else (0.0 if low <= 0 else math.inf), true / high - 1, 0.0)
            if high > 0
            else (0.0 if true <= 0 else math.inf)
        )
    return float(sorted(need)[max(math.ceil(target * len(need)) - 1, 0)])


def choose_cutoff(rows: list[dict[str, Any]], trait: str = "length_px") -> tuple[float, list[dict[str, Any]]]:
    """The highest cutoff on the relative width whose flagged scans hold > 50 % of the total relative error,
    halfway between the widest unflagged and the narrowest flagged scan; and the table of every cutoff."""
    widths = np.array([float(r[f"pred_{WIDTH_COLUMN}"]) for r in rows])
    true = np.array([float(r[f"true_{trait}"]) for r in rows])
    error = np.abs(np.array([float(r[f"pred_{trait}"]) for r in rows]) - true) / np.where(true > 0, true, np.inf)
    order = np.argsort(widths)[::-1]  # widest first
    table, chosen = [], math.inf
    for k in range(len(order) + 1):
        share = float(error[order[:k]].sum() / error.sum()) if error.sum() > 0 else math.nan
        below = widths[order[k]] if k < len(order) else 0.0
        cutoff = math.inf if k == 0 else round((widths[order[k - 1]] + below) / 2, 3)
        shown = None if k == 0 else cutoff  # none flagged: no finite cutoff (JSON has no inf)
        table.append({"cutoff": shown, "flagged": k, "flagged_share": k / len(rows), "error_share": share})
        if chosen == math.inf and share > 0.5:
            chosen = cutoff
    return chosen, table


def leave_one_out(scans: list[dict[str, Any]], t: float, delta: float, target: float) -> list[dict[str, Any]]:
    """Coverage per trait when each scan's margin is chosen on the other scans."""
    rows = []
    for i in range(len(scans)):
        others = scans[:i] + scans[i + 1 :]
        margin = needed_margin(rows_at(others, t, _band(delta)), target)
        rows += rows_at([scans[i]], t, _band(delta, margin))
    return [{k: e[k] for k in ("trait", "n", "coverage")} for e in interval_coverage(rows, AGREEMENT_TRAITS)]


def calibrate(measured: dict[str, Any], target: float) -> dict[str, Any]:
    t, scans = measured["threshold"], measured["scans"]
    grid = []
    for delta in DELTAS:
        band = interval_coverage(rows_at(scans, t, _band(delta)), AGREEMENT_TRAITS)
        margin = math.ceil(needed_margin(rows_at(scans, t, _band(delta)), target) * 1000) / 1000
        rows = rows_at(scans, t, _band(delta, margin))
        width = float(np.median([r[f"pred_{WIDTH_COLUMN}"] for r in rows]))
        entry = {"delta": delta, "band_length_coverage": band[0]["coverage"], "margin": margin}  # rounded up
        grid.append({**entry, "median_length_width": width})
    best = min(grid, key=lambda g: (g["median_length_width"], g["delta"]))
    chosen = _band(best["delta"], best["margin"])
    cutoff, cutoffs = choose_cutoff(rows_at(scans, t, chosen))
    chosen = _band(best["delta"], best["margin"], cutoff)
    rows = rows_at(scans, t, chosen)
    return {
        "checkpoint": measured["checkpoint"],
        "n_images": len(scans),
        "threshold": t,
        "target_length_coverage": target,
        "grid": grid,
        "delta": chosen.delta,
        "margin": chosen.margin,
        "unreliable_width": cutoff,
        "at_chosen": interval_coverage(rows, AGREEMENT_TRAITS),
        "leave_one_out": leave_one_out(scans, t, chosen.delta, target),
        "cutoffs": cutoffs,
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
        f"threshold {result['threshold']:g})\n\n## Per delta: the band's own root-length coverage, the margin that "
        f"brings it to {result['target_length_coverage']:.0%}, and the widened interval's median relative width\n\n"
        f"{markdown_table(rounded(result['grid']))}\n"
        f"Chosen: delta = {result['delta']:g}, margin = {result['margin']:g}, unreliable_width = "
        f"{result['unreliable_width']:g}.\n\n## At the chosen values (in-sample)\n\n"
        f"{markdown_table(rounded(result['at_chosen']))}\n## Leave-one-out coverage (margin chosen on the other "
        f"scans)\n\n{markdown_table(rounded(result['leave_one_out']))}\n## Flag cutoffs (relative root-length "
        f"error)\n\n{markdown_table(rounded(result['cutoffs']))}\n## Per scan\n\n"
        f"{markdown_table(rounded(result['per_image']))}"
    )


def _cache_key(args: argparse.Namespace) -> dict[str, Any]:
    """What the cached measurements depend on: the checkpoint's content, the data, resolution, tiling and clean."""
    clean = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "measure" / "default.yaml").get("clean"))
    checkpoint = sha256_file(checkpoint_file(args.ckpt))
    return {"sha256": checkpoint, "data": str(args.data), "dpi": args.dpi, "step": args.step, "clean": clean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="segroot-ci600", help="a checkpoint file or a shipped model's name")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "segroot"))
    parser.add_argument("--dpi", type=float, default=300.0)
    parser.add_argument("--step", default="tile", help="tile (Smith's grid, fastest) or a pixel step")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--target", type=float, default=0.8, help="root-length coverage to reach")
    parser.add_argument(
        "--cache",
        default=str(ROOT / "logs" / "segroot_study" / "interval_traits.json"),
        help="the measurements: reused when there (delete it after changing the model)",
    )
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache, key = Path(args.cache), _cache_key(args)
    measured = json.loads(cache.read_text()) if cache.is_file() else {}
    if measured.get("key") == key:
        log.info("measurements of %s from %s", measured["checkpoint"], cache)
    else:
        settings = resolve_traits(OmegaConf.load(ROOT / "conf" / "measure" / "default.yaml"))
        measured = {**measure_scans(args, settings), "key": key}
        write_json(cache, measured)
    result = calibrate(measured, args.target)
    out = Path(args.out)
    write_json(out / "intervals_calibration.json", result)
    write_text(out / "intervals_calibration.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
