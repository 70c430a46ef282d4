"""Tables and figures of an evaluation, in the shape of the two papers: Smith et al. Tables 3-4 and
Fig. 7-10, 12; RootSAM Table 1. Shared by `rootseg.eval` (one run) and `rootseg.report` (several)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rootseg.data.io import atomic_path, write_text
from rootseg.outputs import overlay


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
