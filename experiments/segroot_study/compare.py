"""Traits from the prediction vs traits from the annotation on the SegRoot scans: Spearman and r^2 per trait,
pooled Dice of the predicted masks, per split; a scatter figure and the depth profile plots for the README.

    python experiments/segroot_study/compare.py logs/segroot_study [--split ../shared/datasets/segroot/split.json]

Reads OUT/predict/results.csv (predict, image names), OUT/annotation/traits.csv (rootseg.measure, mask names
`<stem>-mask.jpg`), the predicted masks OUT/predict/<stem>.png and the annotation masks; writes
experiments/segroot_study/results/ (agreement.csv, agreement.md, dice.csv) and figures/ (small PNGs).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from rootseg.figures.plots import save_figure
from rootseg.io.masks import read_mask
from rootseg.io.tables import markdown_table, write_csv
from rootseg.measure.agreement import agreement

HERE = Path(__file__).resolve().parent
#: the traits compared, with their units
TRAITS = {
    "length_mm": "mm",
    "diameter_mean_mm": "mm",
    "diameter_median_mm": "mm",
    "length_mm_d0-0.5": "mm",
    "length_mm_d0.5-1": "mm",
    "projected_area_mm2": "mm²",
    "surface_area_mm2": "mm²",
    "volume_mm3": "mm³",
    "tips": "count",
    "branch_points": "count",
    "connected_roots": "count",
    "rld_cm_per_cm3": "cm cm⁻³",
}


def _paired(out: Path) -> pd.DataFrame:
    pred = pd.read_csv(out / "predict" / "results.csv")
    true = pd.read_csv(out / "annotation" / "traits.csv")
    pred["stem"] = pred["name"].str.replace(r"\.[^.]+$", "", regex=True)
    true["stem"] = true["name"].str.replace(r"-mask\.[^.]+$", "", regex=True)
    return pred.merge(true, on="stem", suffixes=("_pred", "_true"))  # the scans predicted so far


def _agreements(paired: pd.DataFrame, split_of: dict[str, str]) -> list[dict]:
    rows = []
    split = paired["stem"].map(split_of)
    for group, keep in (("val", split == "val"), ("train", split == "train"), ("all", split.notna())):
        subset = paired[keep]
        if len(subset) < 3 or (group == "all" and keep.equals(split == "val")):
            continue
        for trait, unit in TRAITS.items():
            x, y = subset[f"{trait}_true"].to_numpy(float), subset[f"{trait}_pred"].to_numpy(float)
            found = agreement(x, y) if np.ptp(x) > 0 else {"spearman": np.nan, "r2": np.nan, "slope": np.nan}
            rows.append(
                {
                    "images": group,
                    "trait": trait,
                    "unit": unit,
                    "annotation_mean": round(float(np.mean(x)), 4),
                    "prediction_mean": round(float(np.mean(y)), 4),
                    "spearman": round(found["spearman"], 4),
                    "r2": round(found["r2"], 4),
                    "slope": round(found["slope"], 4),
                    "n": len(subset),
                }
            )
    return rows


def _dice(out: Path, data: Path, split_of: dict[str, str]) -> list[dict]:
    """Pooled Dice of predict's masks against the annotation (grey > 127), per split."""
    counts: dict[str, np.ndarray] = {}
    for stem, split in split_of.items():
        if not (out / "predict" / f"{stem}.png").is_file():
            continue
        pred = read_mask(out / "predict" / f"{stem}.png") == 1
        true = read_mask(data / "masks" / f"{stem}-mask.jpg") == 1
        found = np.array([np.sum(pred & true), np.sum(pred & ~true), np.sum(~pred & true), 1])
        for group in (split, "all"):
            counts[group] = counts.get(group, np.zeros(4)) + found
    return [
        {"images": group, "pooled_dice": round(2 * tp / (2 * tp + fp + fn), 4), "n": int(n)}
        for group, (tp, fp, fn, n) in counts.items()
    ]


def _scatter(paired: pd.DataFrame, split_of: dict[str, str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ["length_mm", "diameter_mean_mm", "surface_area_mm2", "tips", "branch_points", "rld_cm_per_cm3"]
    fig, axes = plt.subplots(2, 3, figsize=(11, 7))
    val = paired["stem"].map(split_of) == "val"
    for ax, trait in zip(axes.ravel(), shown):
        x, y = paired[f"{trait}_true"], paired[f"{trait}_pred"]
        ax.scatter(x[~val], y[~val], s=12, label="train", color="tab:grey")
        ax.scatter(x[val], y[val], s=14, label="val", color="tab:orange")
        top = float(max(x.max(), y.max()))
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set_title(trait, fontsize=9)
        ax.set_xlabel("annotation", fontsize=8)
        ax.set_ylabel("prediction", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the run folder of run_study.sh (logs/segroot_study)")
    parser.add_argument("--data", type=Path, default=HERE.parents[1].parent / "shared" / "datasets" / "segroot")
    args = parser.parse_args()
    split = json.loads((args.data / "split.json").read_text())
    split_of = {stem: name for name, stems in split.items() for stem in stems}
    paired = _paired(args.out)
    results, figures = HERE / "results", HERE / "figures"
    rows = _agreements(paired, split_of)
    write_csv(results / "agreement.csv", rows)
    (results / "agreement.md").write_text(markdown_table(rows))
    write_csv(results / "dice.csv", _dice(args.out, args.data, split_of))
    _scatter(paired, split_of, figures / "traits_prediction_vs_annotation.png")
    for side in ("prediction", "annotation"):
        shutil.copy(args.out / f"study_{side}" / "depth_profiles.png", figures / f"depth_profiles_{side}.png")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
