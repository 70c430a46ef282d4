"""Agreement between measurements from predictions and from annotations: Spearman's rho and r^2 of a line fit
(Smith et al. 2020 report both for root length and line-intersect counts).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def agreement(x, y) -> dict:
    """Spearman rank correlation and the least-squares line of y on x, as in Smith et al. 2020 Fig. 12."""
    x_arr = np.asarray(x, dtype=np.float64).ravel()
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x and y must have the same length, got {x_arr.size} and {y_arr.size}")
    if x_arr.size < 3:
        raise ValueError(f"agreement needs at least 3 paired values, got {x_arr.size}")
    if not (np.isfinite(x_arr).all() and np.isfinite(y_arr).all()):
        raise ValueError("x and y must be finite (drop NaN or infinite measurements first)")
    if np.ptp(x_arr) == 0:
        raise ValueError("x is constant: correlation and regression are undefined")
    spearman = stats.spearmanr(x_arr, y_arr)
    fit = stats.linregress(x_arr, y_arr)
    return {
        "spearman": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "r2": float(fit.rvalue**2),
        "slope": float(fit.slope),
        "intercept": float(fit.intercept),
        "n": int(x_arr.size),
    }


#: the traits whose agreement compare and eval report (pixel units: every mask folder has them)
AGREEMENT_TRAITS: tuple[str, ...] = (
    "length_px",
    "diameter_median_px",
    "projected_area_px2",
    "tips",
    "branch_points",
    "connected_roots",
)


def median_relative_error(truth, pred) -> float:
    """Median of |pred - truth| / truth over pairs whose truth is not 0 (NaN when none is)."""
    x, y = np.asarray(truth, np.float64), np.asarray(pred, np.float64)
    keep = (x != 0) & np.isfinite(x) & np.isfinite(y)
    return float(np.median(np.abs(y[keep] - x[keep]) / np.abs(x[keep]))) if keep.any() else float("nan")


def trait_agreement(rows, traits=AGREEMENT_TRAITS, true_prefix: str = "true_", pred_prefix: str = "pred_") -> list:
    """Per trait, over images: Spearman, r^2, slope (`agreement`) and the median relative error of the
    prediction (`pred_<trait>`) against the reference (`true_<trait>`); a trait where `agreement` is undefined
    (< 3 images, constant reference, NaN) keeps only n and the median relative error."""
    out = []
    for trait in traits:
        if not rows or f"{true_prefix}{trait}" not in rows[0]:
            continue
        x = np.array([row[f"{true_prefix}{trait}"] for row in rows], np.float64)
        y = np.array([row[f"{pred_prefix}{trait}"] for row in rows], np.float64)
        entry = {"trait": trait, "n": int(x.size), "median_relative_error": median_relative_error(x, y)}
        try:
            fit = agreement(x, y)
        except ValueError:
            fit = {key: float("nan") for key in ("spearman", "r2", "slope", "intercept")}
        out.append({**entry, **{key: fit[key] for key in ("spearman", "r2", "slope", "intercept")}})
    return out
