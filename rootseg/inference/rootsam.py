"""RootSAM on whole scans: the scan resized to the stage's square, cut into the stage's tiles, each tile decoded,
and the result resized back.

How a tile is decoded, in order of preference:
- clicks: the person's clicks for that image (`prompts=` file, each honoured, never filtered), or the clicks a
  proposer's probability map puts on its skeleton (`prompt_ckpt=`, a U-Net); per click the mask with the
  highest predicted IoU, merged by the maximum probability;
- promptless (`prompt_free=promptless`, the default for a checkpoint trained with `prompt_mode` none or mixed):
  one decoder pass per tile with no click, the tiles overlapping and blended as the U-Net's sliding window
  (`rootseg.tiling.window`, half-tile steps and Gaussian weights by default; `step=`, `blend=`);
- the grid (`prompt_free=grid`, the default for a `points` checkpoint): sam2's automatic mask generator
  (`SAM2AutomaticMaskGenerator`, one crop layer) on each tile, a `grid_points_per_side`^2 grid of clicks, and
  every one of a click's masks (three with `multimask_output`) kept when its predicted IoU > `min_predicted_iou`
  and its stability score >= `min_stability` (the IoU of the mask's logits, upscaled to the tile, thresholded
  at +1 and at -1); sam2's comparisons and defaults (0.8, 0.95, offset 1.0). A threshold of 0 turns its filter
  off. Unlike sam2 no box NMS follows: the kept masks are merged by their maximum (a union, where NMS would
  drop a mask whose box overlaps a better one's by > 0.7).

Labelled clicks (P, 3: x, y, 1 root | 0 not root; the annotate app's) prompt *one* object, as SAM's interactive
mode does: one tile centred on the positive clicks is decoded from all its clicks together, and that mask is
kept whatever its predicted IoU (the person judges it).

Tiles run as the U-Net's sliding window runs (`rootseg.tiling.device.DeviceFallback`): bf16 autocast on
CUDA, and when the GPU runs out of memory the model moves to the CPU for the rest of the image.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rootseg.inference.settings import GRID_STEP, InferenceSettings, autocast_enabled
from rootseg.io.images import LazyImage
from rootseg.prompts.sampling import grid_points, skeleton_points
from rootseg.tasks.rootsam import select_best
from rootseg.tiling.device import DeviceFallback
from rootseg.tiling.grid import tile_count
from rootseg.tiling.resize import resize_image, tile_origins
from rootseg.tiling.window import sliding_window_probs

#: clicks decoded together when neither the checkpoint nor `batch_size` says
DEFAULT_PROMPT_BATCH = 64
#: promptless tiles encoded and decoded together unless `batch_size` says
DEFAULT_TILE_BATCH = 1
#: sam2's automatic mask generator (`SAM2AutomaticMaskGenerator`): stability offset and mask logit threshold
STABILITY_OFFSET = 1.0
MASK_THRESHOLD = 0.0
#: masks upscaled to the tile at once when the grid filters them (bounds memory at 1024 px tiles: 64 MiB)
UPSCALE_CHUNK = 16


def stability_scores(logits: torch.Tensor, offset: float = STABILITY_OFFSET) -> torch.Tensor:
    """[N, H, W] mask logits -> [N] IoU of `logits > offset` with `logits > -offset`, as
    `sam2.utils.amg.calculate_stability_score` (mask threshold 0); 0 where the latter is empty (sam2: NaN,
    which no threshold keeps either)."""
    inner = (logits > MASK_THRESHOLD + offset).flatten(1).sum(1).float()
    outer = (logits > MASK_THRESHOLD - offset).flatten(1).sum(1).float()
    return torch.where(outer > 0, inner / outer.clamp_min(1), torch.zeros_like(outer))


def amg_filter(
    low_res: torch.Tensor, iou: torch.Tensor, side: int, min_iou: float, min_stability: float
) -> torch.Tensor:
    """sam2's automatic-mask-generator filter of a batch of masks -> the kept logits [K, side, side].

    low_res [N, h, w] (the decoder's logits, every mask of every click), iou [N] predicted IoUs. As
    `SAM2AutomaticMaskGenerator._process_batch`: predicted IoU > `min_iou`, then the stability score of the
    logits upscaled to the tile (bilinear, as `SAM2Transforms.postprocess_masks`) >= `min_stability`; 0 turns
    a filter off. Only masks passing the IoU filter are upscaled, a few at a time."""
    if min_iou > 0:
        low_res = low_res[iou > min_iou]
    kept = []
    for start in range(0, len(low_res), UPSCALE_CHUNK):
        chunk = low_res[start : start + UPSCALE_CHUNK, None]
        masks = F.interpolate(chunk, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
        if min_stability > 0:
            masks = masks[stability_scores(masks) >= min_stability]
        kept.append(masks)
    return torch.cat(kept) if kept else low_res.new_zeros((0, side, side))


def _refuse(message: str) -> None:
    raise ValueError(message + "; drop it from the command")


def prompt_free_mode(module: Any, settings: InferenceSettings) -> str:
    """How a tile without clicks is decoded: the setting, else what the checkpoint was trained for."""
    trained = getattr(module, "prompt_mode", "points")
    mode = settings.prompt_free or ("grid" if trained == "points" else "promptless")
    if mode == "promptless" and trained == "points":
        _refuse(
            "prompt_free=promptless: this checkpoint was trained with prompt_mode=points and has never decoded "
            "a tile without a click (train with model.prompt_mode=none or mixed)"
        )
    if mode == "grid" and trained == "none":
        _refuse("prompt_free=grid: this checkpoint was trained with prompt_mode=none, without any click")
    if trained == "none" and (settings.prompts or settings.prompt_ckpt):
        _refuse("prompts / prompt_ckpt: this checkpoint was trained with prompt_mode=none and takes no click")
    return mode


class RootSAMInference:
    """Whole-image prediction of a RootSAM task module (`rootseg.tasks.rootsam.RootSAMModule`)."""

    honours: ClassVar[frozenset[str]] = frozenset(
        {
            "prompts",
            "prompt_ckpt",
            "grid_points_per_side",
            "batch_size",
            "prompt_free",
            "min_predicted_iou",
            "min_stability",
            "step",
            "blend",
            "resize",
            "tile",
        }
    )

    def __init__(self, module: Any, settings: InferenceSettings, device: torch.device, proposer: Any = None) -> None:
        self.module = module
        self.device = device
        self.autocast = autocast_enabled(settings.precision, device)
        self.mode = prompt_free_mode(module, settings)
        self.proposer = proposer
        self.tile = int(settings.tile or module.tile)
        self.resize = settings.resize or module.resize
        self.points_per_side = int(settings.grid_points_per_side or module.grid_points_per_side)
        self.prompt_batch = int(settings.batch_size or getattr(module, "prompt_batch", DEFAULT_PROMPT_BATCH))
        self.tile_batch = int(settings.batch_size or DEFAULT_TILE_BATCH)
        self.min_iou = float(_first(settings.min_predicted_iou, getattr(module, "min_predicted_iou", 0.0)))
        self.min_stability = float(_first(settings.min_stability, getattr(module, "min_stability", 0.0)))
        promptless = self.mode == "promptless" and proposer is None
        if not promptless and (settings.step is not None or settings.blend is not None):
            _refuse("step / blend shape RootSAM's promptless sliding window, which these settings do not use")
        grid_settings = (settings.grid_points_per_side, settings.min_predicted_iou, settings.min_stability)
        if promptless and not settings.prompts and any(value is not None for value in grid_settings):
            _refuse(
                "grid_points_per_side / min_predicted_iou / min_stability set the grid, but this run decodes "
                "promptless (prompt_free=grid asks for the grid)"
            )
        self.step = self.tile if settings.step == GRID_STEP else settings.step
        self.blend = settings.blend or "gaussian"
        if self.step is not None and int(self.step) > self.tile:
            _refuse(f"step={self.step} leaves gaps between {self.tile} px tiles (step=tile: the stage's grid)")

    def describe(self) -> dict[str, Any]:
        """What decoded the tiles (summary.md, predict_config.yaml)."""
        info: dict[str, Any] = {"resize": self.resize, "tile": self.tile}
        if self.proposer is not None:
            info["clicks"] = f"proposer skeleton, up to {self.points_per_side**2} per tile"
        elif self.mode == "promptless":
            step = self.step or self.tile // 2
            info["clicks"] = f"none: one promptless decoder pass per tile, step {step} px, {self.blend} blending"
        else:
            info["clicks"] = f"grid, {self.points_per_side}x{self.points_per_side} per tile"
            info["min_predicted_iou"], info["min_stability"] = self.min_iou, self.min_stability
        return info

    def tiles(self, height: int, width: int, default: bool = False) -> int | None:
        """Promptless decoder passes for an image of this size (`default`: at the default step, half a tile);
        None when clicks decide the tiles."""
        if self.mode != "promptless" or self.proposer is not None:
            return None
        size = int(self.resize or max(height, width))
        return tile_count(size, size, self.tile, None if default or self.step is None else int(self.step))

    @torch.no_grad()
    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 image -> (H, W) float32 root probability; `clicks` (P, 2) are (x, y) image pixels."""
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"RootSAM expects an (H, W, 3) image, got shape {array.shape}")
        array = array.astype(np.uint8, copy=False)
        height, width = array.shape[:2]
        size = int(self.resize or max(height, width))
        was_training = self.module.training
        self.module.eval()
        try:
            if clicks is None and self.proposer is None and self.mode == "promptless":
                probs = self._promptless(resize_image(array, size))
            else:
                probs = self._clicked(array, size, clicks)
        finally:
            self.module.train(was_training)
        if (height, width) != (size, size):
            probs = cv2.resize(probs, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(probs, 0.0, 1.0).astype(np.float32, copy=False)

    # -- promptless ----------------------------------------------------------------------------------
    def _promptless(self, resized: np.ndarray) -> np.ndarray:
        """The sliding window over the resized scan with one promptless decoder pass per tile."""
        probs = sliding_window_probs(
            resized,
            self.promptless_tiles,
            tile_in=self.tile,
            tile_out=self.tile,
            step=None if self.step is None else int(self.step),
            blend=self.blend,
            batch_size=self.tile_batch,
            device=self.device,
            autocast=self.autocast,
            model=self.module,
        )
        return probs.numpy()

    def promptless_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, T) float tiles 0-255 -> (B, T, T) root probability, one decoder pass per tile."""
        logits, _ = self.module.net.decode_promptless(self.module.embeddings(tiles))
        return logits[:, 0, 0].float().sigmoid()

    # -- clicks and the grid -------------------------------------------------------------------------
    def _clicked(self, array: np.ndarray, size: int, clicks: np.ndarray | None) -> np.ndarray:
        """The stage's tile grid, each tile decoded from its clicks (given, proposed or the grid)."""
        tile = self.tile
        side = max(size, tile)  # a small image is padded to one tile
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[:size, :size] = resize_image(array, size)
        grid = clicks is None and self.proposer is None
        out = np.zeros((side, side), np.float32)
        fallback = DeviceFallback(self.device, model=self.module, autocast=self.autocast)
        try:
            for x, y, tile_clicks, labels in self._windows(array, clicks, size, side, tile):
                tile_pixels = canvas[y : y + tile, x : x + tile]
                work = functools.partial(self._predict_tile, tile_pixels, tile_clicks, labels, grid=grid)
                region = out[y : y + tile, x : x + tile]
                np.maximum(region, fallback.run(work), out=region)
        finally:
            fallback.restore()
        return out[:size, :size]

    def _windows(
        self, array: np.ndarray, clicks: np.ndarray | None, size: int, side: int, tile: int
    ) -> list[tuple[int, int, np.ndarray, np.ndarray | None]]:
        """(x, y, clicks in the tile, their labels or None) of every tile to decode, on the resized canvas."""
        height, width = array.shape[:2]
        scale = np.array([size / width, size / height], np.float32)
        if clicks is not None and np.asarray(clicks).ndim == 2 and np.asarray(clicks).shape[1] == 3:
            return [self._object_window(np.asarray(clicks, np.float32), scale, side, tile)]
        prompt_map = points = None
        if clicks is not None:
            points = np.asarray(clicks, np.float32).reshape(-1, 2) * scale
        elif self.proposer is not None:
            proposal = self.proposer.probabilities(array)
            prompt_map = cv2.resize(proposal.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
            prompt_map = np.pad(prompt_map, ((0, side - size), (0, side - size)))
        windows = []
        for x, y in tile_origins(side, tile):
            tile_clicks = self._tile_clicks(prompt_map, points, x, y, tile)
            if len(tile_clicks):
                windows.append((x, y, tile_clicks, None))
        return windows

    @staticmethod
    def _object_window(
        clicks: np.ndarray, scale: np.ndarray, side: int, tile: int
    ) -> tuple[int, int, np.ndarray, np.ndarray]:
        """The one tile centred on the positive clicks, and the clicks inside it (labels 1 root, 0 not root)."""
        labels = clicks[:, 2]
        if not np.isin(labels, (0, 1)).all() or not (labels == 1).any():
            raise ValueError("labelled clicks need labels 1 (root) or 0 (not root), at least one of them 1")
        xy = clicks[:, :2] * scale
        centre = xy[labels == 1].mean(0)
        x0, y0 = (int(np.clip(round(float(c) - tile / 2), 0, side - tile)) for c in centre)
        local = xy - np.array([x0, y0], np.float32)
        inside = ((local >= 0) & (local < tile)).all(1)
        if not (labels[inside] == 1).any():
            raise ValueError(f"no positive click falls inside the {tile} px window RootSAM segments")
        return x0, y0, np.ascontiguousarray(local[inside]), labels[inside].astype(np.int64)

    def _tile_clicks(
        self, prompt_map: np.ndarray | None, points: np.ndarray | None, x: int, y: int, tile: int
    ) -> np.ndarray:
        if points is not None:
            inside = (points[:, 0] >= x) & (points[:, 0] < x + tile) & (points[:, 1] >= y) & (points[:, 1] < y + tile)
            return points[inside] - np.array([x, y], np.float32)
        if prompt_map is not None:
            threshold = float(getattr(self.proposer, "threshold", 0.5))  # the proposer's own mask
            return skeleton_points(prompt_map[y : y + tile, x : x + tile], threshold, n=self.points_per_side**2)
        return grid_points(tile, tile, self.points_per_side)

    def _predict_tile(
        self, tile: np.ndarray, clicks: np.ndarray, labels: np.ndarray | None, device: torch.device, grid: bool = True
    ) -> np.ndarray:
        """One (T, T, 3) uint8 tile and its (P, 2) clicks -> (T, T) float32 maximum over the clicks' masks
        (the grid's filtered by `amg_filter`, a person's or a proposer's best mask per click, all kept); with
        `labels`, the mask of the one object all the clicks prompt together."""
        module = self.module
        pixels = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None].to(device)
        embeddings = module.embeddings(pixels)
        side = tile.shape[0]
        if labels is not None:
            coords = torch.from_numpy(clicks)[None, None].to(device)
            logits, iou = module.net.decode(
                embeddings, coords, torch.from_numpy(labels)[None, None].to(device), module.multimask_output
            )
            return select_best(logits, iou)[0, 0].sigmoid().float().cpu().numpy()
        tile_logits = torch.full((side, side), -torch.inf, device=device)
        for start in range(0, len(clicks), self.prompt_batch):
            chunk = torch.from_numpy(np.ascontiguousarray(clicks[start : start + self.prompt_batch])).to(device)
            coords = chunk[None, :, None, :]
            positive = torch.ones(coords.shape[:3], dtype=torch.int64, device=device)
            # the decoder's 1/4-resolution logits; only the masks that are kept are upscaled to the tile
            logits, iou = module.net.decode(embeddings, coords, positive, module.multimask_output, output_size=0)
            if grid:  # every mask of every click, filtered as sam2's automatic mask generator
                low_res, scores = logits[0].flatten(0, 1).float(), iou[0].flatten()
                masks = amg_filter(low_res, scores, side, self.min_iou, self.min_stability)
            else:  # a person's or a proposer's clicks: each click's best mask, never filtered
                best = select_best(logits, iou)[0].float()
                masks = F.interpolate(best[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0]
            if len(masks):
                tile_logits = torch.maximum(tile_logits, masks.amax(0))
        return tile_logits.sigmoid().float().cpu().numpy()  # sigmoid(-inf) = 0 where no mask was kept


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
