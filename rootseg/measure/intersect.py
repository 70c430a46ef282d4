"""Line-intersect counts (Newman 1966, Tennant 1975): how often roots cross a grid of lines, and the root
intensity and length estimates derived from them.
"""

from __future__ import annotations

import numpy as np

from rootseg.measure.length import as_mask

# Grid spacings commonly used for line-intersect counts on minirhizotron tubes (mm).
grid_spacings_mm: tuple[int, ...] = (10, 20, 40, 80)


def _grid_positions(size: int, spacing_px: float) -> np.ndarray:
    """The pixel row (or column) of each grid line at (k + 1/2) spacing: the one it falls in (floor), where a line
    on a pixel boundary up to rounding goes to the pixel it starts (np.arange(2.8, 20, 5.6) puts the third line
    at 13.999999999999996, in pixel 13 by floor, not 14)."""
    positions = np.floor(spacing_px * (np.arange(int(size / spacing_px) + 1) + 0.5) + 1e-9).astype(int)
    return positions[positions < size]


def _runs(lines: np.ndarray) -> int:
    """Contiguous runs of True along the last axis: each run is one crossing of a root."""
    if lines.size == 0:
        return 0
    starts = lines[..., 1:] & ~lines[..., :-1]
    return int(np.count_nonzero(starts) + np.count_nonzero(lines[..., 0]))


def line_intersect_counts(
    mask: np.ndarray, spacing_px: float, mm_per_pixel: float | None = None, valid: np.ndarray | None = None
) -> dict:
    """Simulate the line-intersect method on a mask, as done by hand on minirhizotron tubes.

    Horizontal and vertical grid lines `spacing_px` apart, the first at spacing/2 from the top and left
    borders; every contiguous run of root pixels along a grid line is one intersection. Root intensity
    is intersections per metre of grid line (needs `mm_per_pixel`, else None). `valid` (boolean, the
    mask's shape) limits the grid to labelled pixels: root outside it is not counted and grid line outside
    it is not measured (a partly annotated image, e.g. RootPainter's transparent areas); a {0, 1, 255}
    label mask is limited to its labelled pixels without it.
    """
    labels = np.asarray(mask)
    if valid is None:
        valid = labels != 255 if np.issubdtype(labels.dtype, np.integer) else np.ones(labels.shape, bool)
    valid = np.asarray(valid, dtype=bool)
    mask = as_mask(mask)
    if valid.shape != mask.shape:
        raise ValueError(f"valid has shape {valid.shape}, the mask {mask.shape}")
    mask = mask & valid
    if not spacing_px > 0:
        raise ValueError(f"spacing_px must be positive, got {spacing_px}")
    height, width = mask.shape
    rows = _grid_positions(height, spacing_px)
    cols = _grid_positions(width, spacing_px)
    intersections = _runs(mask[rows, :]) + _runs(mask[:, cols].T)
    grid_length_px = float(np.count_nonzero(valid[rows, :]) + np.count_nonzero(valid[:, cols]))
    intensity = None
    if mm_per_pixel is not None and grid_length_px > 0:
        intensity = intersections / (grid_length_px * mm_per_pixel / 1000.0)
    return {
        "intersections": intersections,
        "grid_length_px": grid_length_px,
        "intensity_per_m": intensity,
        "spacing_px": float(spacing_px),
    }


def root_intensity(mask: np.ndarray, mm_per_pixel: float, spacing_mm: float, valid: np.ndarray | None = None) -> float:
    """Root intensity (intersections per metre of grid line) for a grid `spacing_mm` apart on the tube."""
    result = line_intersect_counts(mask, spacing_mm / mm_per_pixel, mm_per_pixel, valid)
    if result["intensity_per_m"] is None:
        raise ValueError(f"grid spacing {spacing_mm} mm leaves no grid line on a {mask.shape} image")
    return float(result["intensity_per_m"])


def tennant_length(intersections: float, spacing: float) -> float:
    """Root length from line-intersect counts on a square grid: L = 11/14 * N * grid unit.

    Tennant D (1975) "A test of a modified line intersect method of estimating root length", J Ecology
    63:995-1001, simplifying Newman EI (1966) J Applied Ecology 3:139-145, R = pi N A / (2 H): a square
    grid of unit g over area A has H = 2A/g of line, so R = (pi/4) N g ~ (11/14) N g. The result is in
    the unit of `spacing` (pass px for px, mm for mm). N counts crossings of horizontal and vertical lines.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    if intersections < 0:
        raise ValueError(f"intersections must be non-negative, got {intersections}")
    return 11.0 / 14.0 * float(intersections) * float(spacing)
