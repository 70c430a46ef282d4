"""Sliding-window inference for images of any size (nnU-Net style), for the U-Net and any tile model.

The image is placed in an *output frame* (the image, mirror-extended to fit whole output tiles) and tiles of
`tile_out` x `tile_out` output pixels are laid over that frame. Each tile's network input is the
`tile_in` x `tile_in` window centred on it, so a valid-convolution net (U-Net 572 -> 388) sees
`(tile_in - tile_out) / 2` pixels of context on every side; a same-size net has `tile_in == tile_out`.
Pixels outside the image come from symmetric mirror padding (`np.pad(mode="symmetric")`, the edge pixel
repeated, as `rootseg.data.tiling.mirror_pad` does for training tiles), computed by index arithmetic so it
works for any pad, even many times the image's own size, and never builds the padded image.

Two grids:
- `step == tile_out` (Smith et al.): the frame is the image padded up to a multiple of `tile_out`; tiles
  abut and every output pixel is predicted by exactly one tile.
- `step < tile_out` (nnU-Net): the frame is `max(size, tile_out)` on each axis, the number of tiles is
  `ceil((frame - tile_out) / step) + 1` and they are spread evenly so the first starts at 0 and the last
  ends at the frame's edge. Overlapping predictions are averaged with a Gaussian importance map
  (sigma = tile_out / 8, peak 1) or uniform weights.

Tiles are cut lazily in batches (only `batch_size` input tiles exist at a time) and predicted under
`torch.inference_mode`, with bf16 autocast on CUDA. A CUDA out-of-memory error halves the batch size (the
smaller size is kept for the rest of the image) down to 1, then moves the work to the CPU, with a warning
(`DeviceFallback`, which RootSAM's whole-image prediction uses too).

Memory: the image stays uint8 (or a `rootseg.data.io.LazyImage` that reads each tile from a memory-mapped
TIFF), and one (H, W) float32 sum of weighted predictions is accumulated on the CPU; it is divided in place
by the sum of the weights, which is never stored per pixel: the weight map is an outer product (Gaussian or
constant, `weight_profile`) and the tiles form a full rows x columns grid, so the sum of weights at (y, x)
is `row_sum[y] * col_sum[x]`. Peak memory is therefore about 4 bytes per pixel plus the image (plus the
tiles in flight): ~0.45 GB for a 12000 x 9000 scan.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rootseg.data.io import LazyImage

PredictTiles = Callable[[torch.Tensor], torch.Tensor]

# Flip test-time augmentation: the spatial dims of a (B, C, H, W) batch flipped for each variant; a
# prediction (B, H, W) is un-flipped along the same (negative) dims.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))
BLEND_MODES = ("gaussian", "constant")
_RANGE_TOLERANCE = 1e-3  # bf16 and sigmoid round-off tolerated beyond [0, 1] before clamping


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


# ------------------------------------------------------------------------------------------------ input
def _as_image(image: np.ndarray | torch.Tensor | LazyImage) -> tuple[np.ndarray | torch.Tensor | LazyImage, int, int]:
    """Validate the image; return it channel-last (numpy, LazyImage) or channel-first (tensor) with its H, W."""
    if isinstance(image, LazyImage):
        h, w = image.shape[:2]
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"a numpy image must be (H, W, 3) RGB with values 0-255, got shape {image.shape}; "
                "read files with rootseg.data.io.read_image"
            )
        if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
            raise ValueError(f"a numpy image must hold numbers 0-255, got dtype {image.dtype}")
        h, w = image.shape[:2]
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(
                f"a tensor image must be (3, H, W) with values 0-255, got shape {tuple(image.shape)}; "
                "for a numpy (H, W, 3) array pass the array itself"
            )
        if image.is_complex() or image.dtype == torch.bool:
            raise ValueError(f"a tensor image must hold real numbers 0-255, got dtype {image.dtype}")
        h, w = image.shape[1:]
    else:
        raise ValueError(f"image must be a numpy array (H, W, 3) or a tensor (3, H, W), got {type(image)}")
    if h < 1 or w < 1:
        raise ValueError(f"image has no pixels: height {h}, width {w}")
    return image, int(h), int(w)


def _cut_tiles(image: np.ndarray | torch.Tensor, plan: _Plan, corners: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(B, 3, tile_in, tile_in) input tiles (image dtype, image device) for the given output corners."""
    if not isinstance(image, torch.Tensor):  # numpy array, or a LazyImage reading each tile from its file
        tiles = np.stack([image[np.ix_(*plan.input_indices(y, x))] for y, x in corners])
        return torch.from_numpy(tiles).permute(0, 3, 1, 2)
    out = []
    for y, x in corners:
        rows, cols = plan.input_indices(y, x)
        rows_t = torch.from_numpy(rows).to(image.device)
        cols_t = torch.from_numpy(cols).to(image.device)
        out.append(image.index_select(1, rows_t).index_select(2, cols_t))
    return torch.stack(out)


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ----------------------------------------------------------------------------------------------- predict
def flip_tta(predict_tiles: PredictTiles, tiles: torch.Tensor, flips: Sequence[tuple[int, ...]] = FLIPS):
    """Mean over flips of `predict_tiles(flip(tiles))` un-flipped: (B, 3, H, W) -> (B, h, w).

    Each flipped prediction is flipped back before averaging, so an output pixel always averages the
    predictions for that same pixel. For a flip-equivariant `predict_tiles` the result equals no TTA.
    """
    total = None
    for dims in flips:
        pred = predict_tiles(tiles.flip(dims) if dims else tiles)
        pred = _check_prediction(pred, tiles.shape[0], None)
        pred = pred.flip(dims) if dims else pred
        total = pred.float() if total is None else total + pred.float()
    return total / len(flips)


def _check_prediction(pred: torch.Tensor, batch: int, tile_out: int | None) -> torch.Tensor:
    if not isinstance(pred, torch.Tensor):
        raise ValueError(f"predict_tiles must return a torch.Tensor, got {type(pred)}")
    if pred.ndim == 4 and pred.shape[1] == 1:
        pred = pred[:, 0]
    size_ok = tile_out is None or tuple(pred.shape[1:]) == (tile_out, tile_out)
    if pred.ndim != 3 or pred.shape[0] != batch or not size_ok:
        expected = f"({batch}, {tile_out or 'tile_out'}, {tile_out or 'tile_out'})"
        raise ValueError(
            f"predict_tiles must return root probabilities of shape {expected} for {batch} input tiles, "
            f"got {tuple(pred.shape)}"
        )
    return pred


def _is_cpu(device: torch.device) -> bool:
    return device.type == "cpu"


def _free_cuda_cache() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def autocast_context(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when enabled (CUDA by default in this module), else a no-op context."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class DeviceFallback:
    """Where work runs, with bf16 autocast on CUDA, and the move to the CPU when the GPU runs out of memory.

    Shared by the sliding window (`_TileRunner`, which first halves its batch) and RootSAM's whole-image
    prediction, so every model gets the same behaviour:

        fallback = DeviceFallback(device, model)
        try:
            result = fallback.run(lambda device: work(device))   # retried on the CPU after out-of-memory
        finally:
            fallback.restore()                                    # the model back where it was

    After a fallback the rest of the work stays on the CPU (without autocast); `restore` moves the model
    back to its device. Out-of-memory on the CPU itself is re-raised.
    """

    def __init__(
        self, device: str | torch.device, model: torch.nn.Module | None = None, autocast: bool | None = None
    ) -> None:
        self.device = torch.device(device)
        self.autocast = self.device.type == "cuda" if autocast is None else bool(autocast)
        self.model = model
        self._model_device: torch.device | None = None  # set when the model was moved to CPU

    def autocast_context(self):
        return autocast_context(self.device, self.autocast)

    def on_cpu(self) -> bool:
        return _is_cpu(self.device)

    def fall_back_to_cpu(self, stacklevel: int = 3, detail: str = "") -> None:
        warnings.warn(
            f"out of memory on {self.device}{detail}: predicting the rest of this image on the CPU (slow)",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        if self.model is not None:
            parameter = next(self.model.parameters(), None)
            if self._model_device is None:
                self._model_device = parameter.device if parameter is not None else None
            self.model.to("cpu")
        _free_cuda_cache()
        self.device = torch.device("cpu")
        self.autocast = False  # bf16 on the CPU is slow and was not what the user measured

    def run(self, work: Callable[[torch.device], object]):
        """`work(device)` under autocast; after out-of-memory off the CPU, once more on the CPU."""
        while True:
            try:
                with self.autocast_context():
                    return work(self.device)
            except torch.OutOfMemoryError:
                _free_cuda_cache()
                if self.on_cpu():
                    raise
                self.fall_back_to_cpu(stacklevel=4)

    def restore(self) -> None:
        """Put the model back on the device it came from after a CPU fallback."""
        if self.model is not None and self._model_device is not None:
            self.model.to(self._model_device)
            self._model_device = None


class _TileRunner:
    """Predicts batches of tiles on `device`; on out-of-memory halves the batch, then falls back to CPU."""

    def __init__(
        self,
        predict_tiles: PredictTiles,
        tile_out: int,
        device: torch.device,
        autocast: bool,
        batch_size: int,
        tta: bool,
        model: torch.nn.Module | None,
    ) -> None:
        self.predict_tiles = predict_tiles
        self.tile_out = tile_out
        self.fallback = DeviceFallback(device, model, autocast)
        self.batch_size = batch_size
        self.tta = tta

    @property
    def device(self) -> torch.device:
        return self.fallback.device

    def _predict(self, tiles: torch.Tensor) -> torch.Tensor:
        x = tiles.to(self.device, non_blocking=True).float()
        with self.fallback.autocast_context():
            pred = flip_tta(self.predict_tiles, x) if self.tta else self.predict_tiles(x)
        pred = _check_prediction(pred, x.shape[0], self.tile_out).float().cpu()
        lo, hi = torch.aminmax(pred)
        if not (lo >= -_RANGE_TOLERANCE and hi <= 1 + _RANGE_TOLERANCE):  # also false for NaN
            raise ValueError(
                f"predict_tiles must return probabilities in [0, 1] (apply sigmoid/softmax), got values in "
                f"[{lo.item():.4g}, {hi.item():.4g}]"
            )
        return pred.clamp(0.0, 1.0)  # not in place: pred may be the caller's own tensor

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        """(B, 3, tile_in, tile_in) -> (B, tile_out, tile_out) float32 probabilities on the CPU."""
        done: list[torch.Tensor] = []
        start = 0
        while start < tiles.shape[0]:
            chunk = tiles[start : start + self.batch_size]
            try:
                done.append(self._predict(chunk))
            except torch.OutOfMemoryError:
                _free_cuda_cache()
                if self.batch_size > 1 and chunk.shape[0] > 1:
                    self.batch_size = max(1, min(self.batch_size, chunk.shape[0]) // 2)
                    warnings.warn(
                        f"out of memory on {self.device}: retrying with batch size {self.batch_size}",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                elif self.fallback.on_cpu():
                    raise
                else:
                    self.fallback.fall_back_to_cpu(stacklevel=4, detail=" even with one tile per batch")
                continue
            start += chunk.shape[0]
        return torch.cat(done)

    def restore(self) -> None:
        self.fallback.restore()


# ----------------------------------------------------------------------------------------- public entry
def _setup(image, predict_tiles, tile_in, tile_out, step, blend, batch_size, device, autocast, model, tta):
    image, h, w = _as_image(image)
    step = _check_geometry(tile_in, tile_out, step)
    if blend not in BLEND_MODES:
        raise ValueError(f"blend must be one of {BLEND_MODES}, got {blend!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not callable(predict_tiles):
        raise ValueError(f"predict_tiles must be callable, got {type(predict_tiles)}")
    device = torch.device(device)
    if autocast is None:
        autocast = device.type == "cuda"
    if model is None and isinstance(predict_tiles, torch.nn.Module):
        model = predict_tiles
    plan = _plan(h, w, tile_in, tile_out, step)
    runner = _TileRunner(predict_tiles, tile_out, device, bool(autocast), int(batch_size), tta, model)
    return image, plan, runner


def _accumulate(image, plan: _Plan, runner: _TileRunner, weights: torch.Tensor, total, weight_sum, batch_size):
    """Add every tile's weighted prediction into `total` (and its weights into `weight_sum`, if given)."""
    try:
        with torch.inference_mode():
            # Cut tiles in groups of batch_size so memory stays bounded however large the image is; the
            # runner may split a group further after an out-of-memory error.
            for corners in _batches(plan.corners, int(batch_size)):
                probs = runner(_cut_tiles(image, plan, corners))
                for (y, x), prob in zip(corners, probs):
                    rows, cols, tile_rows, tile_cols = plan.output_window(y, x)
                    weight = weights[tile_rows, tile_cols]
                    total[rows, cols] += prob[tile_rows, tile_cols] * weight
                    if weight_sum is not None:
                        weight_sum[rows, cols] += weight
    finally:
        runner.restore()


def _blend_weights(tile_out: int, blend: str) -> torch.Tensor:
    return gaussian_importance_map(tile_out) if blend == "gaussian" else torch.ones(tile_out, tile_out)


def sliding_window_accumulate(
    image: np.ndarray | torch.Tensor | LazyImage,
    predict_tiles: PredictTiles,
    tile_in: int,
    tile_out: int,
    step: int | None = None,
    blend: str = "gaussian",
    tta: bool = False,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    autocast: bool | None = None,
    model: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`sliding_window_probs` before the final division: (weighted sum, weight sum), both (H, W) float32.

    With `blend="constant"` the weight sum is the number of tiles that predicted each pixel (1 everywhere
    for `step == tile_out`). Useful for debugging and for blending several images' worth of tiles; it
    stores the weight sum per pixel, which `sliding_window_probs` does not.
    """
    image, plan, runner = _setup(
        image, predict_tiles, tile_in, tile_out, step, blend, batch_size, device, autocast, model, tta
    )
    total = torch.zeros(plan.h, plan.w, dtype=torch.float32)
    weight_sum = torch.zeros(plan.h, plan.w, dtype=torch.float32)
    _accumulate(image, plan, runner, _blend_weights(tile_out, blend), total, weight_sum, batch_size)
    return total, weight_sum


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


def sliding_window_probs(
    image: np.ndarray | torch.Tensor | LazyImage,
    predict_tiles: PredictTiles,
    tile_in: int,
    tile_out: int,
    step: int | None = None,
    blend: str = "gaussian",
    tta: bool = False,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    autocast: bool | None = None,
    model: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Root probability for every pixel of an image of any size: (H, W) float32 on the CPU.

    Args:
        image: (H, W, 3) numpy array (uint8 or float 0-255), (3, H, W) tensor with values 0-255, or a
            `rootseg.data.io.LazyImage` (a memory-mapped TIFF, read tile by tile; `open_image`).
        predict_tiles: (B, 3, tile_in, tile_in) float32 0-255 on `device` -> (B, tile_out, tile_out)
            root probability in [0, 1] (a (B, 1, tile_out, tile_out) result is accepted too). It runs
            under `torch.inference_mode` (and bf16 autocast on CUDA); normalise the input inside it.
        tile_in, tile_out: input and output tile sides; `(tile_in - tile_out) / 2` is the context margin
            of a valid-convolution net (U-Net 572 -> 388), 0 for a same-size net.
        step: distance between output tiles, default `tile_out // 2`; `step == tile_out` is Smith et al.'s
            non-overlapping grid (each pixel predicted exactly once, best with `blend="constant"`).
        blend: "gaussian" (nnU-Net importance map, sigma = tile_out / 8) or "constant" (plain mean).
        tta: average over the flips none, horizontal, vertical, both (each prediction un-flipped); 4x cost.
        batch_size: tiles per call of `predict_tiles`; halved on CUDA out-of-memory down to 1.
        device: where tiles are predicted; accumulation is always on the CPU.
        autocast: bf16 autocast; default on for CUDA, off on the CPU.
        model: the module `predict_tiles` runs (taken from `predict_tiles` itself when it is a module).
            After out-of-memory at batch size 1 it is moved to the CPU for the rest of the image and moved
            back afterwards; without it, `predict_tiles` must accept CPU tensors for the fallback to work.

    Memory: one (H, W) float32 buffer besides the image (see the module notes); the result is that buffer.
    """
    image, plan, runner = _setup(
        image, predict_tiles, tile_in, tile_out, step, blend, batch_size, device, autocast, model, tta
    )
    total = torch.zeros(plan.h, plan.w, dtype=torch.float32)
    _accumulate(image, plan, runner, _blend_weights(tile_out, blend), total, None, batch_size)
    rows, cols = weight_sums(plan, weight_profile(tile_out, blend))
    # Every image pixel lies in at least one tile and every weight is > 0, so no sum is 0.
    if not (rows.min() > 0 and cols.min() > 0):
        raise RuntimeError("internal error: a pixel no tile covers")  # a bug, never the user's input
    block = max((1 << 22) // plan.w, 1)
    for start in range(0, plan.h, block):
        stop = min(start + block, plan.h)
        total[start:stop] /= torch.from_numpy(np.outer(rows[start:stop], cols).astype(np.float32))
    return total
