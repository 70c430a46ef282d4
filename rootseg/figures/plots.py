"""Matplotlib figures the tables come with: agreement scatter plots, per-image F1 bars; written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rootseg.io.atomic import atomic_path
from rootseg.measure.agreement import agreement


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


def length_scatter(per_method: dict[str, tuple[Sequence[float], Sequence[float]]], path: Path, unit: str) -> Path:
    """Predicted vs annotated root length per image, one colour per method, with the identity line and each
    method's Spearman and r^2 in the legend (Smith et al. Fig. 12, several methods at once)."""
    from rootseg.measure.agreement import agreement

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


def scatter_plot(x, y, path: Path | str, xlabel: str, ylabel: str, title: str = "") -> Path:
    """Scatter with the fitted line and the Spearman / r^2 figures, like Smith et al. 2020 Fig. 12."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from rootseg.io.atomic import atomic_path

    result = agreement(x, y)
    x_arr = np.asarray(x, dtype=np.float64).ravel()
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=150)
    try:
        ax.scatter(x_arr, y_arr, s=14, alpha=0.8, edgecolors="none")
        line_x = np.array([x_arr.min(), x_arr.max()])
        ax.plot(line_x, result["intercept"] + result["slope"] * line_x, color="black", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.text(
            0.03,
            0.97,
            f"Spearman rho = {result['spearman']:.4f}\n$r^2$ = {result['r2']:.4f}\nn = {result['n']}",
            transform=ax.transAxes,
            va="top",
        )
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def depth_profile_plot(
    lines: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]], path: Path, xlabel: str
) -> Path:
    """Mean (+- sd across tubes) against depth, one line per date (label -> (depths, means, sds)); depth grows
    downwards, as in the soil."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 6))
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(lines), 1)))
    for (label, (depths, means, sds)), colour in zip(lines.items(), colours):
        sd = np.nan_to_num(np.asarray(sds, float))
        ax.errorbar(means, depths, xerr=sd, marker="o", color=colour, capsize=2, label=label)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("depth (cm)")
    ax.legend(title="date", fontsize="small")
    return save_figure(fig, path)


def trait_scatter(rows: Sequence[dict], traits: Sequence[str], path: Path) -> Path:
    """One panel per trait: prediction (`pred_<trait>`) against reference (`true_<trait>`) per image, with y = x
    and the trait's Spearman and median relative error (`rootseg.measure.agreement`) in its title."""
    from rootseg.measure.agreement import median_relative_error

    plt = _figure()
    columns = min(3, len(traits))
    fig, axes = plt.subplots(
        -(-len(traits) // columns), columns, figsize=(3.6 * columns, 3.4 * -(-len(traits) // columns))
    )
    for ax, trait in zip(np.atleast_1d(axes).ravel(), traits):
        truth = np.array([row[f"true_{trait}"] for row in rows], np.float64)
        pred = np.array([row[f"pred_{trait}"] for row in rows], np.float64)
        ax.scatter(truth, pred, s=14, alpha=0.8, edgecolors="none")
        top = float(np.nanmax(np.r_[truth, pred, 0.0]))
        ax.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--")
        title = f"{trait}\nmedian rel. error {median_relative_error(truth, pred):.1%}"
        if truth.size >= 3 and np.ptp(truth) > 0 and np.isfinite(truth).all() and np.isfinite(pred).all():
            title += f", rho {agreement(truth, pred)['spearman']:.2f}"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("reference", fontsize=8)
        ax.set_ylabel("prediction", fontsize=8)
    for ax in np.atleast_1d(axes).ravel()[len(traits) :]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)
