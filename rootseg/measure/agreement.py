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
