"""Tables and figures of an evaluation, in the shape of the two papers: Smith et al. Tables 3-4 and
Fig. 7-10, 12; RootSAM Table 1. Shared by `rootseg.eval` (one run) and `rootseg.report` (several)."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.data.io import IGNORE_INDEX, ImageReadError, atomic_path, read_pair, write_text
from rootseg.outputs import overlay

log = logging.getLogger("rootseg.report")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return path


def error_figure(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, path: Path, title: str = "") -> Path:
    """Image, annotation, prediction and errors (false positives red, false negatives green), as in
    Smith et al. Fig. 7-9."""
    plt = _figure()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    panels = [
        (image, "image"),
        ((truth == 1).astype(np.uint8) * 255, "annotation"),
        (pred.astype(np.uint8) * 255, "prediction"),
        (overlay(image, pred, truth), "errors: FP red, FN green, TP yellow"),
    ]
    for ax, (panel, label) in zip(axes, panels):
        ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(label)
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def f1_bars(per_method: dict[str, dict[str, float]], path: Path, metric: str = "f1") -> Path:
    """Per-image scores, one bar per method side by side (Smith et al. Fig. 10)."""
    plt = _figure()
    names = sorted({name for scores in per_method.values() for name in scores})
    width = 0.8 / max(len(per_method), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4))
    for i, (method, scores) in enumerate(per_method.items()):
        xs = np.arange(len(names)) + i * width
        ax.bar(xs, [scores.get(n, np.nan) for n in names], width=width, label=method)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.legend()
    return save_figure(fig, path)


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


def _number(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eEn") else int(text)
    except ValueError:
        return text


#: columns read back as text: image names such as `0001`, `1e3` or `nan` are names, not numbers
TEXT_COLUMNS = frozenset({"name", "prediction", "image_path", "mask_path"})


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV written by `write_csv`, numbers parsed back (except in `TEXT_COLUMNS`)."""
    with open(path, newline="") as handle:
        return [
            {key: value if key in TEXT_COLUMNS else _number(value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


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
                f"{path}: not found. Each RUN_DIR must be the output of `python -m rootseg.eval "
                "ckpt_path=... hydra.run.dir=RUN_DIR`"
            )
    try:
        summary = json.loads(paths["summary.json"].read_text())
    except json.JSONDecodeError as error:
        raise RunReadError(f"{paths['summary.json']}: not valid JSON ({error})") from error
    return {
        "name": name or default_method_name(run_dir, summary),
        "dir": run_dir,
        "summary": summary,
        "per_image": read_csv(paths["per_image.csv"]),
    }


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


def length_scatter(per_method: dict[str, tuple[Sequence[float], Sequence[float]]], path: Path, unit: str) -> Path:
    """Predicted vs annotated root length per image, one colour per method, with the identity line and each
    method's Spearman and r^2 in the legend (Smith et al. Fig. 12, several methods at once)."""
    from rootseg.measure import agreement

    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    top = 0.0
    for method, (truth, pred) in per_method.items():
        truth_arr, pred_arr = np.asarray(truth, float), np.asarray(pred, float)
        label = method
        if truth_arr.size >= 3 and np.ptp(truth_arr) > 0:
            stats = agreement(truth_arr, pred_arr)
            label += f" (rho {stats['spearman']:.3f}, r² {stats['r2']:.3f})"
        ax.scatter(truth_arr, pred_arr, s=16, alpha=0.8, label=label)
        top = max(top, float(np.nanmax(truth_arr, initial=0)), float(np.nanmax(pred_arr, initial=0)))
    ax.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--", label="y = x")
    ax.set_xlabel(f"annotated root length ({unit})")
    ax.set_ylabel(f"predicted root length ({unit})")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


# -- several methods' errors on one image (Smith et al. Fig. 7-9) -----------------------------------------
#: error-map colours: true positive white, false positive red, false negative green (Smith et al. Fig. 7-9),
#: true negative black; unlabelled pixels (scored nowhere) grey
ERROR_COLOURS = {
    "tp": (255, 255, 255),
    "fp": (255, 0, 0),
    "fn": (0, 255, 0),
    "tn": (0, 0, 0),
    "unlabelled": (96, 96, 96),
}
#: the width (px) of one row of panels in errors_<name>.png; larger images are scaled down to fit
ERROR_FIGURE_WIDTH = 2400


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: true positives white, false positives red, false negatives green, true negatives
    black, unlabelled pixels (truth 255) grey whatever was predicted there."""
    pred = np.asarray(pred).astype(bool)
    truth = np.asarray(truth)
    root, labelled = truth == 1, truth != IGNORE_INDEX
    out = np.empty((*truth.shape, 3), np.uint8)
    for key, where in (
        ("tn", ~pred & ~root),
        ("tp", pred & root),
        ("fp", pred & ~root),
        ("fn", ~pred & root),
        ("unlabelled", ~labelled),
    ):
        out[where] = ERROR_COLOURS[key]
    return out


def _downscale(panel: np.ndarray, width: int) -> np.ndarray:
    """Scale down (area average, so a thin root fades rather than vanishes) to at most `width` px wide."""
    import cv2

    if panel.shape[1] <= width:
        return panel
    height = max(1, round(panel.shape[0] * width / panel.shape[1]))
    return cv2.resize(panel, (width, height), interpolation=cv2.INTER_AREA)


def error_panels(
    image: np.ndarray,
    truth: np.ndarray,
    predictions: dict[str, tuple[np.ndarray, float]],
    width: int = ERROR_FIGURE_WIDTH,
) -> list[tuple[str, np.ndarray]]:
    """(title, RGB panel) for photo | annotation | each method's error map (title: method and the image's
    F1), every panel scaled down alike so that the row is at most `width` px wide."""
    annotation = np.zeros((*truth.shape, 3), np.uint8)
    annotation[truth == 1] = ERROR_COLOURS["tp"]
    annotation[truth == IGNORE_INDEX] = ERROR_COLOURS["unlabelled"]
    panels = [("image", image), ("annotation", annotation)]
    for method, (pred, f1) in predictions.items():
        if pred.shape != truth.shape:
            raise ValueError(f"{method}: prediction is {pred.shape} but the annotation is {truth.shape} (H, W)")
        score = "n/a" if f1 is None or math.isnan(f1) else f"{f1:.3f}"
        panels.append((f"{method} (F1 {score})", error_map(pred, truth)))
    panel_width = max(64, width // len(panels))
    return [(title, _downscale(panel, panel_width)) for title, panel in panels]


def compose_panels(panels: Sequence[tuple[str, np.ndarray]], gap: int = 8) -> np.ndarray:
    """The panels side by side on white, `gap` px apart (the picture of errors_<name>.png, less titles)."""
    height = max(panel.shape[0] for _, panel in panels)
    width = sum(panel.shape[1] for _, panel in panels) + gap * (len(panels) - 1)
    row = np.full((height, width, 3), 255, np.uint8)
    left = 0
    for _, panel in panels:
        row[: panel.shape[0], left : left + panel.shape[1]] = panel
        left += panel.shape[1] + gap
    return row


def error_comparison_figure(panels: Sequence[tuple[str, np.ndarray]], path: Path, title: str = "") -> Path:
    """errors_<name>.png: the panels in one row, each under its title, drawn about pixel for pixel."""
    plt = _figure()
    dpi = 110  # save_figure's
    height = max(panel.shape[0] for _, panel in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(sum(p.shape[1] for _, p in panels) / dpi * 1.06, height / dpi + 0.8),
        gridspec_kw={"width_ratios": [p.shape[1] for _, p in panels]},
        squeeze=False,
    )
    for ax, (label, panel) in zip(axes[0], panels):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title}: true positive white, false positive red, false negative green", fontsize=10)
    return save_figure(fig, path)


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
    written = {
        "csv": write_csv(output / "comparison.csv", rows),
        "md": write_text(output / "comparison.md", comparison_markdown(rows)),
    }
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
