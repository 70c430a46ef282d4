"""`evaluate(cfg)`: the papers' numbers for a checkpoint, from the masks `rootseg.predict` would write.

Every image goes through `rootseg.inference.predictor.Predictor` with the settings of
`conf/inference/default.yaml`, the same object and defaults predict uses, so with default settings eval scores
exactly predict's masks. Images are read one at a time (an uncompressed TIFF tile by tile) and only per-image
numbers are kept (`EvalTotals`), so memory does not grow with the number of images.

Writes into the run directory: per_image.csv/.md (Smith Tables 3-4 rows, root pixels, length and, with a
resolution, line-intersect root intensity, annotated vs predicted), summary.json/.md/.csv (pooled, per-image
mean and sd, RootSAM patch metrics at 512 and 1024 per patch and pooled, length and intensity agreement, and
the inference settings that scored), figures/ (error maps, per-image F1 bars, agreement scatter plots) and
predictions/ (the hard masks of the images drawn, or of all with `save_predictions=true`, as 1-bit PNGs, and
index.csv, so `rootseg.report` can draw several runs' errors side by side).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from rootseg.config import typed
from rootseg.config.run_config import output_dir, save_resolved_config
from rootseg.evaluation.data import data_config, resolve_split, split_samples
from rootseg.evaluation.rows import grid_suffix, measure_image, model_info, save_prediction
from rootseg.evaluation.stages import StageGrid, resolve_stage
from rootseg.evaluation.summary import print_summary, write_summary
from rootseg.evaluation.totals import EvalTotals
from rootseg.figures.errors import error_figure
from rootseg.figures.plots import f1_bars, scatter_plot
from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import settings_from_config
from rootseg.io.headers import set_pixel_budget
from rootseg.io.masks import read_pair
from rootseg.io.tables import write_csv
from rootseg.measure.agreement import AGREEMENT_TRAITS, agreement, trait_agreement
from rootseg.measure.intervals import interval_coverage
from rootseg.measure.length import LENGTH_METHODS
from rootseg.measure.settings import resolve_grid_px, resolve_grids, resolve_traits
from rootseg.tasks.checkpoints import load_module

log = logging.getLogger(__name__)


def _agreement(rows: list[dict[str, Any]], true_key: str, pred_key: str) -> dict[str, Any] | None:
    """Spearman and r^2 over images, or None where undefined (< 3 images, NaN, constant annotation)."""
    if not rows or true_key not in rows[0]:
        return None
    x = np.array([r[true_key] for r in rows], dtype=np.float64)
    y = np.array([r[pred_key] for r in rows], dtype=np.float64)
    if x.size < 3 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0:
        log.info("no %s agreement: needs >= 3 images with finite values that are not all equal", true_key)
        return None
    return agreement(x, y)


def _agreements(
    rows: list[dict[str, Any]], grids_mm: list[float], grid_px: float | None, mm: float | None, figures: Path
) -> dict[str, Any]:
    """Root length, line-intersect count and intensity agreement, with their scatter plots; with the traits,
    per trait the agreement `rootseg.compare` reports too (`trait_agreement`), and the coverage of the
    prediction's trait error bars (`interval_coverage`)."""
    result: dict[str, Any] = {}
    if rows and "true_length_px" in rows[0]:
        result["trait_agreement"] = trait_agreement(rows)
    if rows and "pred_length_px_low" in rows[0]:
        result["interval_coverage"] = interval_coverage(rows, AGREEMENT_TRAITS)
    length = _agreement(rows, "length_true_px", "length_pred_px")
    if length is not None:
        result["length_agreement"] = length
        scatter_plot(
            [r["length_true_px"] for r in rows],
            [r["length_pred_px"] for r in rows],
            figures / "root_length_agreement.png",
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
        scatter_plot(
            [r[f"intensity_true_per_m{suffix}"] for r in rows],
            [r[f"intensity_pred_per_m{suffix}"] for r in rows],
            figures / f"root_intensity_agreement{suffix}.png",
            f"annotated root intensity ({grid_mm:g} mm grid, per m)",
            "predicted root intensity (per m)",
            "line-intersect root intensity: prediction vs annotation",
        )
    return result


def _score(
    predictor: Predictor,
    samples: list,
    mask_threshold: int,
    measuring: dict[str, Any],
    cfg: DictConfig,
    run_dir: Path,
    stage: StageGrid | None = None,
) -> tuple[EvalTotals, list[dict[str, Any]]]:
    """Predict and measure each image in turn, keeping only its numbers (and the figures and masks asked for)."""
    totals = EvalTotals(predictor.threshold, stage=stage)
    figures_dir = run_dir / "figures"
    n_figures, save_all = int(cfg.get("figures", 4) or 0), bool(cfg.get("save_predictions", False))
    saved: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        image, target = read_pair(sample.image_path, sample.mask_path, mask_threshold, lazy=True)
        start = time.perf_counter()
        probs = predictor.probabilities(image, sample.image_path)
        seconds = time.perf_counter() - start
        measured, pred = measure_image(probs, target, predictor.threshold, **measuring)
        row = {"name": sample.name, **measured, "seconds": seconds}
        totals.add(row, probs, target)
        del probs
        if index < n_figures:
            error_figure(np.asarray(image), target, pred, figures_dir / f"{sample.name}_errors.png", sample.name)
        if index < n_figures or save_all:
            saved.append(save_prediction(run_dir, sample, pred, mask_threshold))
        log.info("%s: f1=%.4f (%.1f s)", sample.name, row["f1"], seconds)
    return totals, saved


#: the typed settings of conf/eval.yaml besides the inference ones (rootseg.config.typed)
SETTINGS = {
    "seed": typed.Number(whole=True, low=0),
    "figures": typed.Number(whole=True, low=0),
    "save_predictions": typed.Bool(),
    "max_image_pixels": typed.Number(whole=True, low=1, optional=True),
}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score a checkpoint on one split of a data set; returns what summary.json holds."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        raise ValueError(
            "ckpt_path is required: python -m rootseg.eval ckpt_path=<run dir>/checkpoints/<name>.ckpt "
            "[data=folder data.root=DIR]"
        )
    typed.check(cfg, SETTINGS)
    set_pixel_budget(cfg.get("max_image_pixels"))
    settings = settings_from_config(cfg)
    grids_mm, grid_px = resolve_grids(cfg), resolve_grid_px(cfg)
    length_method = str(cfg.get("length_method") or "corrected")
    if length_method not in LENGTH_METHODS:
        raise ValueError(f"length_method must be one of {LENGTH_METHODS}, got {length_method!r}")
    run_dir = output_dir(cfg)
    save_resolved_config(cfg, run_dir)
    module = load_module(cfg.ckpt_path)
    stage = resolve_stage(cfg, module)
    if stage is not None:
        log.info("patch metrics (RootSAM Table 1) on the %s", stage.describe())
        if module.kind == "rootsam":  # the model runs on the grid it is scored on
            settings = settings.with_changes(resize=stage.resize, tile=stage.tile)
    predictor = Predictor.from_checkpoint(cfg.ckpt_path, settings, module=module)
    source = hydra.utils.instantiate(data_config(cfg, module).source)
    source.check_splits()  # every eval, split=all too: a broken split file is an error (rootseg.sources.splits)
    split, split_reason = resolve_split(cfg, source, module)
    samples = split_samples(source, split)
    if not samples:
        raise ValueError(f"the {split} split of {source.root} is empty")
    predictor.bind_images([Path(sample.image_path) for sample in samples])
    log.info("%s", split_reason)
    log.info("evaluating %s on %d %s images of %s", cfg.ckpt_path, len(samples), split, source.root)

    mm = settings.mm_per_pixel
    measuring = {"mm_per_pixel": mm, "grids_mm": grids_mm, "length_method": length_method, "grid_px": grid_px}
    measuring["traits"] = resolve_traits(cfg)
    totals, saved = _score(predictor, samples, source.mask_threshold, measuring, cfg, run_dir, stage)
    result: dict[str, Any] = {
        "checkpoint": str(cfg.ckpt_path),
        "model": model_info(module),
        "inference": predictor.describe(),
        "data": str(source.root),
        "split": split,
        "split_reason": split_reason,
        "threshold": predictor.threshold,
        "mm_per_pixel": mm,
        **totals.summary(),
    }
    rows = totals.rows
    figures_dir = run_dir / "figures"
    result.update(_agreements(rows, grids_mm, grid_px, mm, figures_dir))
    f1_bars({Path(str(cfg.ckpt_path)).stem: {r["name"]: r["f1"] for r in rows}}, figures_dir / "f1_per_image.png")
    if saved:
        write_csv(run_dir / "predictions" / "index.csv", saved)
    write_summary(run_dir, rows, result)
    print_summary(result, run_dir)
    return result
