"""Where the tiles of a sliding window lie and how they are weighted, for images of any size.

The image is placed in an *output frame* (the image, mirror-extended to fit whole output tiles) and tiles of
`tile_out` x `tile_out` output pixels are laid over that frame. Each tile's network input is the
`tile_in` x `tile_in` window centred on it, so a valid-convolution net (U-Net 572 -> 388) sees
`(tile_in - tile_out) / 2` pixels of context on every side; a same-size net has `tile_in == tile_out`.
Pixels outside the image come from symmetric mirror padding (`np.pad(mode="symmetric")`, the edge pixel
repeated, as `rootseg.tiling.training.mirror_pad` does for training tiles), computed by index arithmetic so it
works for any pad, even many times the image's own size, and never builds the padded image.

Two grids:
- `step == tile_out` (Smith et al.): the frame is the image padded up to a multiple of `tile_out`; tiles
  abut and every output pixel is predicted by exactly one tile.
- `step < tile_out` (nnU-Net): the frame is `max(size, tile_out)` on each axis, the number of tiles is
  `ceil((frame - tile_out) / step) + 1` and they are spread evenly so the first starts at 0 and the last
  ends at the frame's edge. Overlapping predictions are averaged with a Gaussian importance map
  (sigma = tile_out / 8, peak 1) or uniform weights.

The weight map is an outer product (Gaussian or constant, `weight_profile`) and the tiles form a full rows x
columns grid, so the sum of weights at (y, x) is `row_sum[y] * col_sum[x]` (`weight_sums`): it is never
stored per pixel.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

BLEND_MODES = ("gaussian", "constant")
#: the step that reproduces Smith et al.'s protocol: output tiles abut, each pixel predicted once
GRID_STEP = "tile"


def resolve_window(step: int | str | None, blend: str | None, tile_out: int) -> tuple[int, str]:
    """The one rule for a whole-image window's defaults, shared by U-Net validation/test (`model.eval_*`) and
    eval/predict (`InferenceSettings`), so `val/f1` scores the masks eval scores: no step is half a tile,
    `"tile"` is Smith et al.'s grid, no blend is Gaussian."""
    if step == GRID_STEP:
        step = tile_out
    elif step is None:
        step = max(tile_out // 2, 1)
    elif isinstance(step, bool) or not isinstance(step, int | np.integer) or not 1 <= step <= tile_out:
        raise ValueError(
            f"step={step!r} must be a whole number in [1, {tile_out}] (a larger step leaves gaps between "
            f"the {tile_out} px output tiles) or {GRID_STEP!r} (Smith et al.'s grid)"
        )
    blend = blend or "gaussian"
    if blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES} or null, got {blend!r}")
    return int(step), blend


# --------------------------------------------------------------------------------------------- geometry
def _check_geometry(tile_in: int, tile_out: int, step: int | None) -> int:
    """Validate the tile sizes and return the step (default tile_out // 2)."""
    for name, value in (("tile_in", tile_in), ("tile_out", tile_out)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if tile_out > tile_in or (tile_in - tile_out) % 2:
        raise ValueError(
            f"tile_in ({tile_in}) - tile_out ({tile_out}) must be even and >= 0: it is twice the context "
            "margin a valid-convolution net removes (U-Net 572 -> 388), 0 for a same-size net"
        )
    if step is None:
        step = max(tile_out // 2, 1)
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 1 <= step <= tile_out:
        raise ValueError(
            f"step must be an integer in [1, tile_out={tile_out}] (a larger step leaves gaps), got {step!r}"
        )
    return int(step)


def _axis_positions(size: int, tile_out: int, step: int) -> tuple[list[int], int]:
    """Start of each output tile along one axis and the length of the output frame."""
    if size < 1:
        raise ValueError(f"image sides must be >= 1 pixel, got {size}")
    if step == tile_out:  # Smith et al.: pad to a multiple of the tile, tiles abut, no overlap
        count = math.ceil(size / tile_out)
        return [i * tile_out for i in range(count)], count * tile_out
    frame = max(size, tile_out)  # nnU-Net: evenly spread tiles, first at 0, last flush with the edge
    count = math.ceil((frame - tile_out) / step) + 1
    if count == 1:
        return [0], frame
    spacing = (frame - tile_out) / (count - 1)
    return [int(round(i * spacing)) for i in range(count)], frame


def tile_count(h: int, w: int, tile_out: int, step: int | None = None) -> int:
    """len(tile_grid(...)) without building the list (millions of tiles at step=1 on a scan)."""
    step = _check_geometry(tile_out, tile_out, step)
    return len(_axis_positions(h, tile_out, step)[0]) * len(_axis_positions(w, tile_out, step)[0])


def tile_grid(h: int, w: int, tile_out: int, step: int | None = None) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the output tiles, in the padded output frame (see `frame_shape`)."""
    step = _check_geometry(tile_out, tile_out, step)
    ys, _ = _axis_positions(h, tile_out, step)
    xs, _ = _axis_positions(w, tile_out, step)
    return [(y, x) for y in ys for x in xs]


def frame_shape(h: int, w: int, tile_out: int, step: int | None = None) -> tuple[int, int]:
    """(height, width) of the padded output frame the tiles of `tile_grid` cover exactly."""
    step = _check_geometry(tile_out, tile_out, step)
    return _axis_positions(h, tile_out, step)[1], _axis_positions(w, tile_out, step)[1]


@dataclass(frozen=True)
class _Plan:
    h: int
    w: int
    tile_in: int
    tile_out: int
    margin: int
    offset_y: int  # the image's top-left pixel in the output frame (image centred in the frame)
    offset_x: int
    corners: tuple[tuple[int, int], ...]

    def output_window(self, y: int, x: int) -> tuple[slice, slice, slice, slice]:
        """Where a tile at frame corner (y, x) lands in the image, and which part of the tile lands there."""
        top, left = y - self.offset_y, x - self.offset_x
        y0, y1 = max(top, 0), min(top + self.tile_out, self.h)
        x0, x1 = max(left, 0), min(left + self.tile_out, self.w)
        return slice(y0, y1), slice(x0, x1), slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)

    def input_indices(self, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """Image rows and columns (mirror-mapped) that make up the input tile of the tile at (y, x)."""
        rows = np.arange(self.tile_in) + (y - self.offset_y - self.margin)
        cols = np.arange(self.tile_in) + (x - self.offset_x - self.margin)
        return _symmetric_index(rows, self.h), _symmetric_index(cols, self.w)


def _plan(h: int, w: int, tile_in: int, tile_out: int, step: int) -> _Plan:
    ys, frame_h = _axis_positions(h, tile_out, step)
    xs, frame_w = _axis_positions(w, tile_out, step)
    return _Plan(
        h=h,
        w=w,
        tile_in=tile_in,
        tile_out=tile_out,
        margin=(tile_in - tile_out) // 2,
        offset_y=(frame_h - h) // 2,
        offset_x=(frame_w - w) // 2,
        corners=tuple((y, x) for y in ys for x in xs),
    )


def _symmetric_index(positions: np.ndarray, size: int) -> np.ndarray:
    """Map any integer positions onto [0, size) as `np.pad(mode="symmetric")` would, for any distance."""
    period = 2 * size
    folded = np.mod(positions, period)
    return np.where(folded >= size, period - 1 - folded, folded)


def coverage_count(h: int, w: int, tile_in: int, tile_out: int, step: int | None = None) -> np.ndarray:
    """(h, w) int32: how many tiles predict each image pixel, with the exact windows inference uses.

    With `step == tile_out` every entry is 1 (each pixel predicted exactly once); any 0 would be a bug.
    """
    step = _check_geometry(tile_in, tile_out, step)
    plan = _plan(h, w, tile_in, tile_out, step)
    count = np.zeros((h, w), dtype=np.int32)
    for y, x in plan.corners:
        rows, cols, _, _ = plan.output_window(y, x)
        count[rows, cols] += 1
    return count


def weight_profile(tile_out: int, blend: str, sigma_scale: float = 1.0 / 8) -> np.ndarray:
    """The 1-D (tile_out,) float64 factor of the blending weights: weights = outer(profile, profile).

    Gaussian (sigma = tile_out * sigma_scale, peak 1, as `gaussian_importance_map`) or ones (constant).
    """
    if blend == "constant":
        return np.ones(tile_out, dtype=np.float64)
    sigma = max(tile_out * sigma_scale, 1e-6)
    axis = np.arange(tile_out, dtype=np.float64) - (tile_out - 1) / 2
    g = np.exp(-0.5 * (axis / sigma) ** 2)
    return g / g.max()


@functools.lru_cache(maxsize=8)
def gaussian_importance_map(tile_out: int, sigma_scale: float = 1.0 / 8) -> torch.Tensor:
    """nnU-Net's importance map: a Gaussian centred on the tile, sigma = tile_out * sigma_scale, peak 1.

    Every value is > 0 (the corners of a tile are about exp(-16) ~ 1e-7 of the centre), so any pixel a tile
    covers gets weight and the blend never divides by zero. Do not modify the returned (cached) tensor.
    """
    sigma = max(tile_out * sigma_scale, 1e-6)
    axis = torch.arange(tile_out, dtype=torch.float64) - (tile_out - 1) / 2
    g = torch.exp(-0.5 * (axis / sigma) ** 2)
    weights = torch.outer(g, g)
    weights = weights / weights.max()
    smallest_positive = weights[weights > 0].min()
    return weights.clamp_min(smallest_positive).to(torch.float32)


def weight_sums(plan: _Plan, profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image row and per image column, the sum of the weight profile over the tiles covering it.

    The weight sum of pixel (y, x) is `rows[y] * cols[x]`: each tile's weights are outer(profile, profile)
    cut to its window, and the tiles are every pair of a row position and a column position.
    """
    rows = np.zeros(plan.h, dtype=np.float64)
    cols = np.zeros(plan.w, dtype=np.float64)
    for y in sorted({y for y, _ in plan.corners}):
        image_rows, _, tile_rows, _ = plan.output_window(y, plan.offset_x)
        rows[image_rows] += profile[tile_rows]
    for x in sorted({x for _, x in plan.corners}):
        _, image_cols, _, tile_cols = plan.output_window(plan.offset_y, x)
        cols[image_cols] += profile[tile_cols]
    return rows, cols
