"""Traits from the prediction vs traits from the annotation on the SegRoot scans: Spearman and r^2 per trait,
pooled Dice of the predicted masks, per split; a scatter figure and the depth profile plots for the README.

    python experiments/segroot_study/compare.py logs/segroot_study [--split ../shared/datasets/segroot/split.json]

Reads OUT/predict/results.csv (predict, image names), OUT/annotation/traits.csv (rootseg.measure, mask names
`<stem>-mask.jpg`), the predicted masks OUT/predict/<stem>.png and the annotation masks; writes
experiments/segroot_study/results/ (agreement.csv/.md, dice.csv, depth_profiles_<side>.md, months_<side>.md from
OUT/study_<side>/) and figures/ (small PNGs: the scatter, each study's profiles, both profiles per month).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from rootseg.figures.plots import save_figure
from rootseg.io.atomic import write_text
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


def _side_by_side(rows: list[dict]) -> list[dict]:
    """agreement.csv with the splits side by side, one row per trait, as the README shows it."""
    wide: dict[str, dict] = {}
    for row in rows:
        out = wide.setdefault(row["trait"], {"trait": row["trait"], "unit": row["unit"]})
        for key in ("annotation_mean", "prediction_mean", "spearman", "r2", "slope"):
            out[f"{key} {row['images']} (n={row['n']})"] = row[key]
    return list(wide.values())


def _dice(out: Path, data: Path, split_of: dict[str, str]) -> list[dict]:
    """Pooled Dice of predict's masks against the annotation (grey > 127), per split, as `rootseg.compare`
    counted it (run_study.sh step 5: OUT/compare_<split>/out/summary.json)."""
    rows = []
    for split in ("val", "train"):
        summary = out / f"compare_{split}" / "out" / "summary.json"
        if summary.is_file():
            found = json.loads(summary.read_text())
            rows.append({"images": split, "pooled_dice": round(found["pooled"]["dice"], 4), "n": found["n_images"]})
    return rows


def _profile_rows(study: Path) -> list[dict]:
    """Root length density by depth (rows) and month (columns), `mean ± sd (tubes)`, as the README shows it."""
    prof = pd.read_csv(study / "depth_profiles.csv")
    prof["month"] = prof["date"].str[:7]
    rows = []
    for depth, at_depth in prof.groupby("depth_cm"):
        row = {"depth_cm": f"{depth:.1f}"}
        for r in at_depth.itertuples():
            sd = "" if np.isnan(r.rld_cm_per_cm3_sd) else f" ± {r.rld_cm_per_cm3_sd:.2f}"
            row[r.month] = f"{r.rld_cm_per_cm3_mean:.2f}{sd} ({r.n_tubes})"
        rows.append(row)
    months = sorted(prof["month"].unique())
    return [{key: row.get(key, "") for key in ["depth_cm", *months]} for row in rows]


def _month_rows(study: Path) -> list[dict]:
    """Mean per scan by month (`images.csv`): how much root, how fine, how branched."""
    images = pd.read_csv(study / "images.csv")
    images["month"] = images["date"].str[:7]
    shown = {"length_mm": 0, "rld_cm_per_cm3": 2, "diameter_mean_mm": 3, "tips": 0, "branch_points": 0}
    rows = []
    for month, group in images.groupby("month"):
        rows.append({"month": month, "scans": len(group), **{k: f"{group[k].mean():.{d}f}" for k, d in shown.items()}})
    return rows


def _profiles_figure(out: Path, path: Path) -> Path:
    """The two studies' depth profiles side by side, one panel per month, on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = {side: pd.read_csv(out / f"study_{side}" / "depth_profiles.csv") for side in ("annotation", "prediction")}
    months = sorted({d[:7] for prof in sides.values() for d in prof["date"]})
    fig, axes = plt.subplots(1, len(months), figsize=(3 * len(months), 4), sharex=True, sharey=True)
    for ax, month in zip(np.atleast_1d(axes), months):
        for (side, prof), colour in zip(sides.items(), ("tab:blue", "tab:orange")):
            rows = prof[prof["date"].str[:7] == month].sort_values("depth_cm")
            ax.errorbar(
                rows["rld_cm_per_cm3_mean"],
                rows["depth_cm"],
                xerr=rows["rld_cm_per_cm3_sd"].fillna(0),
                marker="o",
                ms=4,
                capsize=2,
                label=side,
                color=colour,
            )
        ax.set_title(month, fontsize=9)
        ax.set_xlabel("RLD (cm cm$^{-3}$)", fontsize=8)
    first = np.atleast_1d(axes)[0]
    first.invert_yaxis()
    first.set_ylabel("nominal depth (cm)", fontsize=8)
    first.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


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
    write_text(results / "agreement.md", markdown_table(rows))
    write_text(results / "agreement_by_split.md", markdown_table(_side_by_side(rows)))
    dice = _dice(args.out, args.data, split_of)
    write_csv(results / "dice.csv", dice)
    _scatter(paired, split_of, figures / "traits_prediction_vs_annotation.png")
    _profiles_figure(args.out, figures / "depth_profiles_compared.png")
    for side in ("prediction", "annotation"):
        study = args.out / f"study_{side}"
        shutil.copy(study / "depth_profiles.png", figures / f"depth_profiles_{side}.png")
        write_text(results / f"depth_profiles_{side}.md", markdown_table(_profile_rows(study)))
        write_text(results / f"months_{side}.md", markdown_table(_month_rows(study)))
    print(markdown_table(rows))
    print(markdown_table(dice))


if __name__ == "__main__":
    main()
