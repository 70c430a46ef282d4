"""`python -m rootseg.eval ckpt_path=PATH [data=folder data.root=DIR]`: the papers' numbers for a model.

Writes into the run directory: per_image.csv/.md (Smith Tables 3-4 rows, root pixels, length and, with a
resolution, line-intersect root intensity, annotated vs predicted), summary.json/.md/.csv (pooled,
per-image mean and sd, RootSAM patch metrics at 512 and 1024 per patch and pooled, length and intensity
agreement), figures/ (error maps, per-image F1 bars, length and intensity scatter plots) and predictions/
(the hard masks of the images drawn, or of all with `save_predictions=true`, as 1-bit PNGs, and index.csv
with each image's and mask's path, so `rootseg.report` can draw several runs' errors side by side).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from rootseg import measure, metrics, reports
from rootseg.data.io import IGNORE_INDEX, read_pair, write_image, write_text
from rootseg.measure import LENGTH_METHODS
from rootseg.modules.loading import attach_prompt_proposer, load_module, set_click_grid
from rootseg.utils import cli
from rootseg.utils.config import CONFIG_DIR, output_dir, save_resolved_config

log = logging.getLogger("rootseg.eval")
PATCH_SIZES = (512, 1024)


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def data_config(cfg: DictConfig, module) -> DictConfig:
    """The data the user named, else the data the checkpoint was trained on."""
    if cfg.get("data") is not None:
        return cfg.data
    if not module.run_config or "data" not in module.run_config:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint names no data; pass data=folder data.root=DIR")
    return OmegaConf.create(module.run_config["data"])


def _samples(source, split: str) -> list:
    """One split of the source, or every image of it with `split=all`."""
    if split == "all":
        return [sample for _, sample in sorted(source.samples().items())]
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}: use auto, train, val, test or all")
    return source.split(split)


def resolve_split(cfg: DictConfig, source, module) -> tuple[str, str]:
    """The split to score and why. `split=auto` (the default) is the test split of the checkpoint's own data
    when no data is given, and of a source that defines its splits (a folder with a split file, SegRoot,
    RootPainter, PRMI, synthetic); a folder without a split file is scored whole (`all`): its test split
    would be the ~20 % share that Smith's rule sets aside, which is not what a held-out folder is for."""
    from rootseg.data.sources import FolderSource, SyntheticSource

    split = cfg.get("split") or "auto"
    if split != "auto":
        return split, f"split={split} given"
    if cfg.get("data") is None:
        return "test", "split=auto: the test split of the checkpoint's own data"
    if not isinstance(source, FolderSource) or isinstance(source, SyntheticSource):
        return "test", f"split=auto: the test split {type(source).__name__} defines"
    split_path = source.root / source.split_file if source.split_file else None
    if split_path is not None and split_path.is_file():
        return "test", f"split=auto: the test split of {split_path}"
    reason = (
        f"split=auto: {source.root} has no split file ({source.split_file or 'none configured'}), so every image "
        "is scored (split=test would score only the share that Smith's rule sets aside)"
    )
    trained_on = ((module.run_config or {}).get("data") or {}).get("root")
    if trained_on and Path(str(trained_on)).expanduser().resolve() == source.root.resolve():
        log.warning(
            "%s is the folder the checkpoint was trained on: 'all' includes its training images; "
            "pass split=test for the share it held out",
            source.root,
        )
    return "all", reason


def resolve_mm_per_pixel(cfg: DictConfig) -> float | None:
    """mm per pixel from `mm_per_pixel=` or `dpi=` (25.4 / dpi); both may be given if they agree (0.5 %)."""
    mm, dpi = cfg.get("mm_per_pixel"), cfg.get("dpi")
    for key, value in (("mm_per_pixel", mm), ("dpi", dpi)):
        if value is not None and not float(value) > 0:
            raise ValueError(f"{key} must be positive, got {value}")
    if dpi is None:
        return None if mm is None else float(mm)
    from_dpi = measure.mm_per_pixel_from_dpi(float(dpi))
    if mm is not None and not math.isclose(float(mm), from_dpi, rel_tol=0.005):
        raise ValueError(
            f"mm_per_pixel={mm} and dpi={dpi} disagree ({dpi} dpi is {from_dpi:.5f} mm per pixel); give one of them"
        )
    return from_dpi if mm is None else float(mm)


def resolve_threshold(cfg: DictConfig, module) -> float:
    """`threshold=` (e.g. SegRoot's 0.9), else the checkpoint's own."""
    threshold = cfg.get("threshold")
    if threshold is None:
        return float(module.threshold)
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold} (null: the checkpoint's own)")
    return float(threshold)


def model_info(module) -> dict[str, Any]:
    """What the checkpoint is (for `rootseg.report`, which names methods by experiment)."""
    run_config = module.run_config or {}
    return {
        "kind": module.kind,
        "experiment_name": run_config.get("experiment_name"),
        "model_target": (run_config.get("model") or {}).get("_target_"),
    }


def measure_image(
    probs: np.ndarray,
    target: np.ndarray,
    threshold: float,
    mm_per_pixel: float | None = None,
    grids_mm: Sequence[float] = (10.0,),
    length_method: str = "corrected",
    grid_px: float | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """One per_image.csv row (less name and seconds) and the hard prediction.

    Every column counts labelled pixels only (target 0 or 1; 255 is unlabelled, e.g. RootPainter's
    transparent areas): the prediction is cut to them before root pixels, length and line intersects are
    measured, as the annotation can only hold root there. The first grid's intersections and intensity have
    plain column names (`intensity_true_per_m`); each further grid's end in `_<spacing>mm`. Without a
    resolution, `grid_px` counts intersections on a grid that many pixels apart (no intensity per metre).
    """
    pred = probs >= threshold
    labelled = target != IGNORE_INDEX
    truth = target == 1
    pred_labelled = pred & labelled
    counts = metrics.confusion(pred, target)
    row: dict[str, Any] = {
        **counts,
        **metrics.scores(**counts),
        "segroot_soft_dice": metrics.segroot_soft_dice(probs, target),
        "unlabelled_pixels": int(np.count_nonzero(~labelled)),
        "root_pixels_true": int(truth.sum()),
        "root_pixels_pred": int(pred_labelled.sum()),
        "length_true_px": measure.skeleton_length(truth, method=length_method),
        "length_pred_px": measure.skeleton_length(pred_labelled, method=length_method),
    }
    if mm_per_pixel:
        row["length_true_mm"] = row["length_true_px"] * mm_per_pixel
        row["length_pred_mm"] = row["length_pred_px"] * mm_per_pixel
        for grid_mm in grids_mm:
            suffix = grid_suffix(grid_mm, grids_mm)
            for side, mask in (("true", truth), ("pred", pred_labelled)):
                found = measure.line_intersect_counts(mask, grid_mm / mm_per_pixel, mm_per_pixel, valid=labelled)
                row[f"intersections_{side}{suffix}"] = found["intersections"]
                intensity = found["intensity_per_m"]
                row[f"intensity_{side}_per_m{suffix}"] = math.nan if intensity is None else float(intensity)
    elif grid_px:
        for side, mask in (("true", truth), ("pred", pred_labelled)):
            row[f"intersections_{side}"] = measure.line_intersect_counts(mask, grid_px, valid=labelled)["intersections"]
    return row, pred


def grid_suffix(grid_mm: float, grids_mm: Sequence[float]) -> str:
    """Column-name suffix of a line-intersect grid: none for the first (the headline), `_20mm` for the rest."""
    return "" if grid_mm == grids_mm[0] else f"_{grid_mm:g}mm"


def resolve_grids(cfg: DictConfig) -> list[float]:
    """`line_intersect_grid_mm=10` or `=[10,20,40,80]` (Smith et al.'s grids): spacings in mm, first = headline."""
    value = cfg.get("line_intersect_grid_mm")
    values = [10.0] if value is None else list(value) if isinstance(value, list | tuple | ListConfig) else [value]
    try:
        grids = [float(v) for v in values]
    except (TypeError, ValueError):
        grids = []
    if not grids or not all(math.isfinite(g) and g > 0 for g in grids) or len(set(grids)) != len(grids):
        raise ValueError(
            f"line_intersect_grid_mm must be a positive spacing in mm or a list of distinct ones "
            f"(e.g. [10,20,40,80]), got {value!r}"
        )
    return grids


def resolve_grid_px(cfg: DictConfig) -> float | None:
    """`line_intersect_grid_px=40`: the pixel grid used without a resolution, or None."""
    grid_px = cfg.get("line_intersect_grid_px")
    if grid_px is not None and not (isinstance(grid_px, int | float) and not isinstance(grid_px, bool) and grid_px > 0):
        raise ValueError(f"line_intersect_grid_px must be a positive spacing in pixels, got {grid_px!r}")
    return grid_px


def prediction_file(name: str) -> str:
    """predictions/<name>.png, relative to the run directory (path separators in a name become _)."""
    return "predictions/" + re.sub(r"[\\/]", "_", name) + ".png"


def save_prediction(run_dir: Path, sample, pred: np.ndarray, mask_threshold: int) -> dict[str, Any]:
    """The hard mask as a lossless 1-bit PNG (root white) and its predictions/index.csv row."""
    relative = prediction_file(sample.name)
    write_image(run_dir / relative, np.ascontiguousarray(pred, dtype=bool), optimize=True)
    return {
        "name": sample.name,
        "prediction": relative,
        "image_path": str(Path(sample.image_path).resolve()),
        "mask_path": str(Path(sample.mask_path).resolve()),
        "mask_threshold": mask_threshold,
    }


def _agreement(rows: list[dict[str, Any]], true_key: str, pred_key: str) -> dict[str, Any] | None:
    """Spearman and r^2 over images, or None where undefined (< 3 images, NaN, constant annotation)."""
    if not rows or true_key not in rows[0]:
        return None
    x = np.array([r[true_key] for r in rows], dtype=np.float64)
    y = np.array([r[pred_key] for r in rows], dtype=np.float64)
    if x.size < 3 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0:
        log.info("no %s agreement: needs >= 3 images with finite values that are not all equal", true_key)
        return None
    return measure.agreement(x, y)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        raise ValueError(
            "ckpt_path is required: python -m rootseg.eval ckpt_path=<run dir>/checkpoints/<name>.ckpt "
            "[data=folder data.root=DIR]"
        )
    mm = resolve_mm_per_pixel(cfg)
    grids_mm, grid_px = resolve_grids(cfg), resolve_grid_px(cfg)
    length_method = str(cfg.get("length_method") or "corrected")
    if length_method not in LENGTH_METHODS:
        raise ValueError(f"length_method must be one of {LENGTH_METHODS}, got {length_method!r}")
    run_dir = output_dir(cfg)
    save_resolved_config(cfg, run_dir)
    module = load_module(cfg.ckpt_path)
    threshold = resolve_threshold(cfg, module)
    device = _device(cfg.get("device"))
    module.to(device)
    attach_prompt_proposer(module, cfg.get("prompt_ckpt"), device)
    set_click_grid(module, cfg.get("grid_points_per_side"))
    source = hydra.utils.instantiate(data_config(cfg, module).source)
    split, split_reason = resolve_split(cfg, source, module)
    samples = _samples(source, split)
    if not samples:
        raise ValueError(f"the {split} split of {source.root} is empty")
    log.info("%s", split_reason)
    log.info("evaluating %s on %d %s images of %s", cfg.ckpt_path, len(samples), split, source.root)

    rows: list[dict[str, Any]] = []
    preds, targets, patch_rows = [], [], {size: [] for size in PATCH_SIZES}
    pooled_ap = metrics.PooledAP()
    figures_dir = run_dir / "figures"
    n_figures, save_all = int(cfg.get("figures", 4) or 0), bool(cfg.get("save_predictions", False))
    saved: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        image, target = read_pair(sample.image_path, sample.mask_path, source.mask_threshold)
        start = time.perf_counter()
        with torch.inference_mode():
            probs = module.predict_probs(
                torch.from_numpy(image).to(device),
                step=cfg.get("eval_step"),
                blend=cfg.get("eval_blend"),
                tta=cfg.get("eval_tta"),
            )
        probs = probs.float().cpu().numpy()
        seconds = time.perf_counter() - start
        measured, pred = measure_image(probs, target, threshold, mm, grids_mm, length_method, grid_px)
        row = {"name": sample.name, **measured, "seconds": seconds}
        rows.append(row)
        preds.append(pred)
        targets.append(target)
        pooled_ap.update(probs, target)
        for size in PATCH_SIZES:
            patch_rows[size] += metrics.patch_scores(probs, target, size, threshold)
        if index < n_figures:
            reports.error_figure(image, target, pred, figures_dir / f"{sample.name}_errors.png", sample.name)
        if index < n_figures or save_all:
            saved.append(save_prediction(run_dir, sample, pred, source.mask_threshold))
        log.info("%s: f1=%.4f (%.1f s)", sample.name, row["f1"], seconds)

    pooled, _, summary = metrics.pooled_and_per_image(preds, targets)
    summary["no_root"] = [{"name": rows[e["index"]]["name"], "fp": e["fp"]} for e in summary["no_root"]]
    ap_pooled = pooled_ap.compute()
    patches = {}
    for size in PATCH_SIZES:
        patches[str(size)] = {
            **metrics.mean_over_images(patch_rows[size], ("iou", "dice", "ap")),
            "iou_pooled": pooled["iou"],
            "dice_pooled": pooled["dice"],
            "ap_pooled": ap_pooled,
            "n_patches": len(patch_rows[size]),
            "n_scored": sum(math.isfinite(r["iou"]) for r in patch_rows[size]),
            "n_ap": sum(math.isfinite(r["ap"]) for r in patch_rows[size]),
        }
    result: dict[str, Any] = {
        "checkpoint": str(cfg.ckpt_path),
        "model": model_info(module),
        "data": str(source.root),
        "split": split,
        "split_reason": split_reason,
        "n_images": len(rows),
        "threshold": threshold,
        "mm_per_pixel": mm,
        "pooled": pooled,
        "per_image": {"mean": summary["mean"], "sd": summary["sd"], "n": summary["n_with_root"]},
        "no_root_images": summary["no_root"],
        "segroot_soft_dice_mean": float(np.mean([r["segroot_soft_dice"] for r in rows])),
        "patches": patches,
    }
    length = _agreement(rows, "length_true_px", "length_pred_px")
    if length is not None:
        result["length_agreement"] = length
        measure.scatter_plot(
            [r["length_true_px"] for r in rows],
            [r["length_pred_px"] for r in rows],
            figures_dir / "root_length_agreement.png",
            "annotated root length (px)",
            "predicted root length (px)",
            "root length: prediction vs annotation",
        )
    counts = None if mm else _agreement(rows, "intersections_true", "intersections_pred")
    if counts is not None:
        result["intersections_agreement"] = {**counts, "grid_px": float(grid_px)}
    for grid_mm in grids_mm:
        suffix = grid_suffix(grid_mm, grids_mm)
        intensity = _agreement(rows, f"intensity_true_per_m{suffix}", f"intensity_pred_per_m{suffix}")
        if intensity is None:
            continue
        result[f"intensity_agreement{suffix}"] = {**intensity, "grid_mm": grid_mm}
        measure.scatter_plot(
            [r[f"intensity_true_per_m{suffix}"] for r in rows],
            [r[f"intensity_pred_per_m{suffix}"] for r in rows],
            figures_dir / f"root_intensity_agreement{suffix}.png",
            f"annotated root intensity ({grid_mm:g} mm grid, per m)",
            "predicted root intensity (per m)",
            "line-intersect root intensity: prediction vs annotation",
        )
    reports.f1_bars(
        {Path(str(cfg.ckpt_path)).stem: {r["name"]: r["f1"] for r in rows}}, figures_dir / "f1_per_image.png"
    )
    if saved:
        reports.write_csv(run_dir / "predictions" / "index.csv", saved)
    _write(run_dir, rows, result)
    _print(result, run_dir)
    return result


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The pixel scores as table rows: one per statistic (summary.md)."""
    keys = ("precision", "recall", "f1", "iou", "accuracy")
    rows = [{"statistic": "pooled over all pixels", **{k: result["pooled"][k] for k in keys}}]
    rows.append({"statistic": "per-image mean", **{k: result["per_image"]["mean"][k] for k in keys}})
    rows.append({"statistic": "per-image sd", **{k: result["per_image"]["sd"][k] for k in keys}})
    return rows


AGREEMENT_KEYS = ("spearman", "spearman_p", "r2", "slope", "intercept")


def summary_csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every summary number as one row (group, statistic, metric, value, n): summary.csv.

    n is the number of images (pooled, soft Dice, agreement), of images with root (per-image mean and sd),
    or of patches that went into a per-patch mean."""
    n_images = result["n_images"]
    rows: list[dict[str, Any]] = []

    def add(group: str, statistic: str, metric: str, value: Any, n: Any) -> None:
        rows.append({"group": group, "statistic": statistic, "metric": metric, "value": value, "n": n})

    for metric in ("precision", "recall", "f1", "iou", "accuracy"):
        add("pixels", "pooled over all pixels", metric, result["pooled"][metric], n_images)
    for statistic in ("mean", "sd"):
        for metric in ("precision", "recall", "f1", "iou", "accuracy"):
            add(
                "pixels",
                f"per-image {statistic}",
                metric,
                result["per_image"][statistic][metric],
                result["per_image"]["n"],
            )
    add("pixels", "per-image mean", "segroot_soft_dice", result["segroot_soft_dice_mean"], n_images)
    for size, values in result["patches"].items():
        group = f"patches {size}"
        add(group, "per-patch mean", "iou", values["iou"], values["n_scored"])
        add(group, "per-patch mean", "dice", values["dice"], values["n_scored"])
        add(group, "per-patch mean", "ap", values["ap"], values["n_ap"])
        for metric in ("iou", "dice", "ap"):
            add(group, "pooled over all pixels", metric, values[f"{metric}_pooled"], n_images)
    for key in agreement_keys(result):
        if key in result:
            group, grid = agreement_label(key, result[key])
            statistic = "predicted vs annotated" + (f" ({grid} grid)" if grid else "")
            for metric in AGREEMENT_KEYS:
                add(group, statistic, metric, result[key][metric], result[key]["n"])
    return rows


def agreement_keys(result: dict[str, Any]) -> list[str]:
    """length_agreement, then intensity_agreement (the headline grid) and intensity_agreement_<g>mm, or
    intersections_agreement (a pixel grid, without a resolution)."""
    grids = ("intensity_agreement", "intersections_agreement")
    return ["length_agreement"] + [key for key in result if key.startswith(grids)]


def agreement_label(key: str, agreement: dict[str, Any]) -> tuple[str, str]:
    """(what is compared, its grid spacing such as "10 mm"; "" for length) for summary.csv and summary.md."""
    if key == "length_agreement":
        return "root length", ""
    if key == "intersections_agreement":
        return "root intersections", f"{agreement['grid_px']:g} px"
    return "root intensity", f"{agreement['grid_mm']:g} mm"


def _write(run_dir: Path, rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    reports.write_csv(run_dir / "per_image.csv", rows)
    columns = ["name", "precision", "recall", "f1", "iou", "accuracy", "segroot_soft_dice"]
    columns += ["length_true_px", "length_pred_px"]
    if result["mm_per_pixel"]:
        columns += ["intensity_true_per_m", "intensity_pred_per_m"]
    columns += ["fp"]
    write_text(run_dir / "per_image.md", reports.markdown_table(rows, columns))
    reports.write_csv(run_dir / "summary.csv", summary_csv_rows(result))
    patches = [
        {
            "patch": size,
            "mIoU": v["iou"],
            "Dice": v["dice"],
            "mAP": v["ap"],
            "patches": v["n_patches"],
            "scored": v["n_scored"],
            "with root": v["n_ap"],
            "IoU pooled": v["iou_pooled"],
            "Dice pooled": v["dice_pooled"],
            "AP pooled": v["ap_pooled"],
        }
        for size, v in result["patches"].items()
    ]
    text = (
        f"# Evaluation of {result['checkpoint']}\n\nData: {result['data']} ({result['split']} split, "
        f"{result['n_images']} images; {result['split_reason']}), threshold {result['threshold']:g}\n\n"
        "## Pixels (Smith et al. 2020 Tables 3-4; per-image over images with root)\n\n"
        + reports.markdown_table(summary_rows(result))
        + f"\nSegRoot soft Dice (smoothing 1), mean over images: {result['segroot_soft_dice_mean']:.4f}\n"
        + "\n## Patches (RootSAM Table 1)\n\n"
        "mIoU and Dice: mean over patches with root in the annotation or the prediction (`scored`); mAP: mean "
        "over patches with root in the annotation (`with root`). Pooled: all test pixels at once (the same "
        "for every patch size).\n\n" + reports.markdown_table(patches)
    )
    for key in agreement_keys(result):
        if key in result:
            agreement = result[key]
            title, grid = agreement_label(key, agreement)
            grid = f" ({grid} line-intersect grid)" if grid else ""
            text += (
                f"\n## {title.capitalize()}{grid}, predicted vs annotated\n\nSpearman {agreement['spearman']:.4f}, "
                f"r^2 {agreement['r2']:.4f} (n = {agreement['n']})\n"
            )
    if result["no_root_images"]:
        text += "\n## Images without root (false-positive pixels)\n\n" + reports.markdown_table(
            result["no_root_images"]
        )
    write_text(run_dir / "summary.md", text)
    reports.write_json(run_dir / "summary.json", result)


def _print(result: dict[str, Any], run_dir: Path) -> None:
    pooled = result["pooled"]
    print(
        f"\npooled: f1={pooled['f1']:.4f} precision={pooled['precision']:.4f} recall={pooled['recall']:.4f} "
        f"iou={pooled['iou']:.4f}  per-image mean f1={result['per_image']['mean']['f1']:.4f}"
    )
    print(f"tables and figures: {run_dir}")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> float:
    with cli.user_errors():
        result = evaluate(cfg)
    return float(result["pooled"]["f1"]) if not math.isnan(result["pooled"]["f1"]) else 0.0


def entry() -> None:
    """The `rootseg-eval` console script: `python -m rootseg.eval` with its error hints."""
    cli.run(main, "eval")


if __name__ == "__main__":
    entry()
