"""Error maps and the side-by-side error figures of Smith et al. Fig. 7-9: true positives white, false positives
red, false negatives green (`rootseg.figures.colours`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rootseg.figures.colours import ERROR_COLOURS
from rootseg.figures.overlay import overlay
from rootseg.figures.plots import _figure, save_figure
from rootseg.io.arrays import IGNORE_INDEX


def error_figure(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, path: Path, title: str = "") -> Path:
    """Image, annotation, prediction and errors (true positives white, false positives red, false negatives
    green), as in Smith et al. Fig. 7-9."""
    plt = _figure()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    panels = [
        (image, "image"),
        ((truth == 1).astype(np.uint8) * 255, "annotation"),
        (pred.astype(np.uint8) * 255, "prediction"),
        (overlay(image, pred, truth), "errors: TP white, FP red, FN green"),
    ]
    for ax, (panel, label) in zip(axes, panels):
        ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(label)
        ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


# -- several methods' errors on one image (Smith et al. Fig. 7-9) -----------------------------------------
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
