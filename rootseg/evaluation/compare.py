"""Tables and figures of an evaluation, in the shape of the two papers: Smith et al. Tables 3-4 and
Fig. 7-10, 12; RootSAM Table 1. Shared by `rootseg.eval` (one run) and `rootseg.report` (several)."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.evaluation.table1 import table1_markdown, table1_rows
from rootseg.figures.errors import error_comparison_figure, error_panels
from rootseg.figures.plots import f1_bars, length_scatter
from rootseg.io.atomic import write_text
from rootseg.io.images import ImageReadError
from rootseg.io.masks import read_pair
from rootseg.io.tables import markdown_table, read_csv, write_csv

log = logging.getLogger(__name__)


# -- comparison of several evaluations (rootseg.report) ------------------------------------------------
#: (column, where in summary.json, format) of the comparison table, in the order of RootSAM's Table 1
#: (patch metrics) then Smith et al.'s Tables 3-4 (pixels) and Fig. 12 (root length)
COMPARISON_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mIoU@512", ("patches", "512", "iou")),
    ("Dice@512", ("patches", "512", "dice")),
    ("mAP@512", ("patches", "512", "ap")),
    ("mIoU@1024", ("patches", "1024", "iou")),
    ("Dice@1024", ("patches", "1024", "dice")),
    ("mAP@1024", ("patches", "1024", "ap")),
    ("AP pooled", ("patches", "512", "ap_pooled")),
    ("F1", ("pooled", "f1")),
    ("precision", ("pooled", "precision")),
    ("recall", ("pooled", "recall")),
    ("IoU", ("pooled", "iou")),
    ("F1 per-image mean", ("per_image", "mean", "f1")),
    ("F1 per-image sd", ("per_image", "sd", "f1")),
    ("length Spearman", ("length_agreement", "spearman")),
    ("length r2", ("length_agreement", "r2")),
    ("intensity Spearman", ("intensity_agreement", "spearman")),
    ("intensity r2", ("intensity_agreement", "r2")),
)


class RunReadError(ValueError):
    """A run directory lacks what `rootseg.report` reads; the message names the file and the command."""


def _lookup(data: dict[str, Any], keys: Sequence[str]) -> float:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return math.nan
        data = data[key]
    return float(data) if data is not None else math.nan


def default_method_name(run_dir: Path, summary: dict[str, Any]) -> str:
    """The experiment the evaluated checkpoint came from: summary.json's, else the config_resolved.yaml of
    this run or of the training run that wrote the checkpoint (<run>/checkpoints/x.ckpt), else the
    checkpoint's file name, else the run directory's name."""
    from omegaconf import OmegaConf

    name = (summary.get("model") or {}).get("experiment_name")
    checkpoint = Path(str(summary["checkpoint"])) if summary.get("checkpoint") else None
    configs = [run_dir / "config_resolved.yaml"]
    if checkpoint is not None and len(checkpoint.parents) > 1:
        configs.append(checkpoint.parents[1] / "config_resolved.yaml")
    for config_path in configs:
        if not name and config_path.is_file():
            name = OmegaConf.load(config_path).get("experiment_name")
    if not name and checkpoint is not None:
        name = checkpoint.stem
    return str(name or run_dir.name)


def load_run(run_dir: Path | str, name: str | None = None) -> dict[str, Any]:
    """One evaluation: {"name", "dir", "summary" (summary.json), "per_image" (rows of per_image.csv)}."""
    run_dir = Path(run_dir).expanduser()
    paths = {file: run_dir / file for file in ("summary.json", "per_image.csv")}
    for path in paths.values():
        if not path.is_file():
            raise RunReadError(
                f"{path}: not found; each folder in runs=[...] must be the output of `python -m rootseg.eval "
                "ckpt_path=... hydra.run.dir=RUN_DIR`"
            )
    try:
        summary = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunReadError(f"{paths['summary.json']}: not valid UTF-8 JSON ({error}){_REDO}") from error
    if not isinstance(summary, dict):
        raise RunReadError(
            f"{paths['summary.json']}: holds a JSON {type(summary).__name__}, not the object rootseg.eval writes "
            f"(checkpoint, pooled, per_image, ...){_REDO}"
        )
    return {
        "name": name or default_method_name(run_dir, summary),
        "dir": run_dir,
        "summary": summary,
        "per_image": read_per_image(paths["per_image.csv"]),
    }


#: what every RunReadError about a file's content ends with
_REDO = "; give the folder rootseg.eval wrote, or evaluate again with hydra.run.dir=RUN_DIR"


def read_per_image(path: Path) -> list[dict[str, Any]]:
    """per_image.csv's rows, each with a name and a number in f1 (nan allowed: an image scored nothing)."""
    try:
        rows = read_csv(path)
    except (UnicodeDecodeError, csv.Error) as error:
        raise RunReadError(f"{path}: not a readable UTF-8 CSV table ({error}){_REDO}") from error
    columns = set(rows[0]) if rows else set()
    if rows and not {"name", "f1"} <= columns:
        missing = ", ".join(sorted({"name", "f1"} - columns))
        raise RunReadError(f"{path}: no {missing} column (columns: {sorted(columns)[:12]}){_REDO}")
    for number, row in enumerate(rows, start=2):
        if isinstance(row["f1"], bool) or not isinstance(row["f1"], int | float):
            raise RunReadError(f"{path}, line {number} ({row.get('name')}): f1 is {row['f1']!r}, not a number{_REDO}")
    return rows


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def comparison_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: patch metrics at 512 and 1024, pooled pixel scores, per-image F1, length agreement.
    Missing entries (e.g. no length agreement with fewer than 3 images) are NaN."""
    rows = []
    for run, name in zip(runs, _unique_names([run["name"] for run in runs]), strict=True):
        summary = run["summary"]
        row: dict[str, Any] = {"method": name}
        row.update({column: _lookup(summary, keys) for column, keys in COMPARISON_COLUMNS})
        row["images"] = len(run["per_image"])
        row["data"] = f"{summary.get('data', '')} ({summary.get('split', '')})"
        rows.append(row)
    return rows


def _pm(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


def comparison_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """RootSAM Table 1 (patches) and Smith et al. Tables 3-4 (pixels, root length) side by side."""
    patch_columns = ["method", *(c for c, keys in COMPARISON_COLUMNS if keys[0] == "patches")]
    pixel_rows = [
        {
            **{k: row[k] for k in ("method", "F1", "precision", "recall", "IoU")},
            "F1 per image (mean ± sd)": _pm(row["F1 per-image mean"], row["F1 per-image sd"]),
            "length Spearman": row["length Spearman"],
            "length r2": row["length r2"],
            "intensity Spearman": row["intensity Spearman"],
            "intensity r2": row["intensity r2"],
            "images": row["images"],
        }
        for row in rows
    ]
    text = "# Comparison\n\n## Patches (RootSAM Table 1; mean over patches; AP pooled: all pixels at once)\n\n"
    text += markdown_table(rows, patch_columns)
    text += "\n## Pixels pooled over all images, per-image F1, root length and intensity (Smith et al. 2020)\n\n"
    text += markdown_table(pixel_rows)
    text += "\n## Evaluated on\n\n" + markdown_table([{"method": r["method"], "data": r["data"]} for r in rows])
    if len({row["data"] for row in rows}) > 1:
        text += "\nNote: the runs were evaluated on different data or splits; their rows are not comparable.\n"
    return text


def prediction_index(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The saved predictions of an eval run by image name (predictions/index.csv), or {} without."""
    path = Path(run["dir"]) / "predictions" / "index.csv"
    return {str(row["name"]): row for row in read_csv(path)} if path.is_file() else {}


def read_prediction(path: Path) -> np.ndarray:
    """A prediction PNG written by rootseg.eval as a boolean (H, W) mask."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 127


def shared_images(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Images with a saved prediction in every run, in the first run's order; logs why when there are none."""
    indexes = [prediction_index(run) for run in runs]
    for run, name, index in zip(runs, names, indexes):
        if not index:
            log.warning(
                "%s (%s) holds no saved predictions (predictions/index.csv): evaluate it again with figures=N "
                "or save_predictions=true; no error figures",
                run["dir"],
                name,
            )
            return []
    shared = [image for image in indexes[0] if all(image in index for index in indexes[1:])]
    if not shared:
        held = "; ".join(
            f"{name}: {', '.join(list(index)[:5])}{' ...' if len(index) > 5 else ''}"
            for name, index in zip(names, indexes)
        )
        log.warning(
            "the runs share no image with a saved prediction (%s): no error figures. Evaluate them on the same "
            "images (the first `figures` of the same split are drawn; save_predictions=true saves all)",
            held,
        )
    return shared


def write_error_figures(
    runs: Sequence[dict[str, Any]], names: Sequence[str], output: Path, figures: int = 4
) -> dict[str, Path]:
    """errors_<image>.png for at most `figures` images with a saved prediction in every run (Smith et al.
    Fig. 7-9): photo | annotation | each method's error map titled with its F1 on that image."""
    if figures <= 0:
        return {}
    chosen = shared_images(runs, names)[:figures]
    indexes = [prediction_index(run) for run in runs]
    f1s = [{str(row["name"]): row.get("f1") for row in run["per_image"]} for run in runs]
    written = {}
    for image_name in chosen:
        first = indexes[0][image_name]
        for name, index in zip(names[1:], indexes[1:]):
            if index[image_name]["image_path"] != first["image_path"]:
                log.warning(
                    "%s: %s evaluated %s, %s evaluated %s; drawing the first",
                    image_name,
                    names[0],
                    first["image_path"],
                    name,
                    index[image_name]["image_path"],
                )
        try:
            image, truth = read_pair(first["image_path"], first["mask_path"], int(first["mask_threshold"]))
            predictions = {
                name: (read_prediction(Path(run["dir"]) / index[image_name]["prediction"]), _float(f1.get(image_name)))
                for run, name, index, f1 in zip(runs, names, indexes, f1s)
            }
            panels = error_panels(image, truth, predictions)
        except (OSError, ImageReadError, ValueError, KeyError) as error:
            log.warning("%s: no error figure (%s)", image_name, error)
            continue
        path = output / ("errors_" + re.sub(r"[\\/]", "_", image_name) + ".png")
        written[f"errors_{image_name}"] = error_comparison_figure(panels, path, image_name)
    return written


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def write_comparison(runs: Sequence[dict[str, Any]], output: Path | str, figures: int = 4) -> dict[str, Path]:
    """comparison.md/.csv, per-image F1 bars, (when the per-image tables hold lengths) a length scatter and
    errors_<image>.png for up to `figures` images every run saved a prediction of."""
    output = Path(output).expanduser()
    rows = comparison_rows(runs)
    table1 = table1_rows(runs)
    written = {
        "csv": write_csv(output / "comparison.csv", rows),
        "md": write_text(output / "comparison.md", comparison_markdown(rows) + table1_markdown(table1)),
    }
    if table1:
        written["table1"] = write_csv(output / "table1.csv", table1)
    names = [row["method"] for row in rows]
    written["f1_per_image"] = f1_bars(
        {name: {str(r["name"]): float(r["f1"]) for r in run["per_image"]} for name, run in zip(names, runs)},
        output / "f1_per_image.png",
    )
    for unit in ("mm", "px"):
        true_key, pred_key = f"length_true_{unit}", f"length_pred_{unit}"
        if all(run["per_image"] and {true_key, pred_key} <= run["per_image"][0].keys() for run in runs):
            written["length"] = length_scatter(
                {
                    name: ([r[true_key] for r in run["per_image"]], [r[pred_key] for r in run["per_image"]])
                    for name, run in zip(names, runs)
                },
                output / "root_length_agreement.png",
                unit,
            )
            break
    written.update(write_error_figures(runs, names, output, figures))
    return written
