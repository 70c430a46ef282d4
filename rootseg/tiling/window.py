"""Sliding-window inference for images of any size (nnU-Net style), for the U-Net and any tile model; the
geometry of the tiles is `rootseg.tiling.grid`.

Tiles are cut lazily in batches (only `batch_size` input tiles exist at a time) and predicted under
`torch.inference_mode`, with bf16 autocast on CUDA. A CUDA out-of-memory error halves the batch size (the
smaller size is kept for the rest of the image) down to 1, then moves the work to the CPU, with a warning
(`DeviceFallback`, which RootSAM's whole-image prediction uses too).

Memory: the image stays uint8 (or a `rootseg.io.images.LazyImage` that reads each tile from a memory-mapped
TIFF), and one (H, W) float32 sum of weighted predictions is accumulated on the CPU; it is divided in place
by the sum of the weights (`rootseg.tiling.grid.weight_sums`). Peak memory is therefore about 4 bytes per
pixel plus the image (plus the tiles in flight): ~0.45 GB for a 12000 x 9000 scan.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from rootseg.io.images import LazyImage
from rootseg.tiling.device import DeviceFallback, _free_cuda_cache
from rootseg.tiling.grid import (
    BLEND_MODES,
    _check_geometry,
    _Plan,
    _plan,
    gaussian_importance_map,
    weight_profile,
    weight_sums,
)

PredictTiles = Callable[[torch.Tensor], torch.Tensor]


# Flip test-time augmentation: the spatial dims of a (B, C, H, W) batch flipped for each variant; a
# prediction (B, H, W) is un-flipped along the same (negative) dims.
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


_RANGE_TOLERANCE = 1e-3  # bf16 and sigmoid round-off tolerated beyond [0, 1] before clamping


# ------------------------------------------------------------------------------------------------ input
def _as_image(image: np.ndarray | torch.Tensor | LazyImage) -> tuple[np.ndarray | torch.Tensor | LazyImage, int, int]:
    """Validate the image; return it channel-last (numpy, LazyImage) or channel-first (tensor) with its H, W."""
    if isinstance(image, LazyImage):
        h, w = image.shape[:2]
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"a numpy image must be (H, W, 3) RGB with values 0-255, got shape {image.shape}; "
                "read files with rootseg.io.images.read_image"
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
            `rootseg.io.images.LazyImage` (a memory-mapped TIFF, read tile by tile; `open_image`).
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
        total[start:stop].clamp_(0.0, 1.0)  # the weighted mean of values in [0, 1] can round to 1 + 1e-7
    return total
