"""RootSAM on whole scans: the scan resized to the stage's square, cut into the stage's tiles, each tile
decoded from clicks, and the result resized back.

Clicks per tile, in order of preference: the person's clicks for that image (`prompts=` file); the clicks a
proposer's probability map puts on its skeleton (`prompt_ckpt=`, a U-Net); else a grid of
`grid_points_per_side`^2 clicks (SAM's automatic mode, without its filtering). Per click the mask with the
highest predicted IoU is kept (dropped below the checkpoint's `min_predicted_iou`); masks and tiles are merged
by the maximum probability.

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

from rootseg.datamodules.prompts import grid_points, skeleton_points
from rootseg.inference.settings import InferenceSettings, autocast_enabled
from rootseg.io.images import LazyImage
from rootseg.tasks.rootsam import select_best
from rootseg.tiling.device import DeviceFallback
from rootseg.tiling.resize import resize_image, tile_origins

#: clicks decoded together when neither the checkpoint nor `batch_size` says
DEFAULT_PROMPT_BATCH = 64


class RootSAMInference:
    """Whole-image prediction of a RootSAM task module (`rootseg.tasks.rootsam.RootSAMModule`)."""

    honours: ClassVar[frozenset[str]] = frozenset({"prompts", "prompt_ckpt", "grid_points_per_side", "batch_size"})

    def __init__(self, module: Any, settings: InferenceSettings, device: torch.device, proposer: Any = None) -> None:
        self.module = module
        self.device = device
        self.autocast = autocast_enabled(settings.precision, device)
        self.points_per_side = int(settings.grid_points_per_side or module.grid_points_per_side)
        self.prompt_batch = int(settings.batch_size or getattr(module, "prompt_batch", DEFAULT_PROMPT_BATCH))
        self.proposer = proposer

    def describe(self) -> dict[str, Any]:
        source = "proposer skeleton" if self.proposer is not None else "grid"
        return {
            "clicks": f"{source}, up to {self.points_per_side}x{self.points_per_side} per tile",
            "min_predicted_iou": self.module.min_predicted_iou,
            "resize": self.module.resize,
            "tile": self.module.tile,
        }

    @torch.no_grad()
    def __call__(self, image: np.ndarray | LazyImage, clicks: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 image -> (H, W) float32 root probability; `clicks` (P, 2) are (x, y) image pixels,
        each its own root, or (P, 3) with a label column, together one object."""
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"RootSAM expects an (H, W, 3) image, got shape {array.shape}")
        array = array.astype(np.uint8, copy=False)
        height, width = array.shape[:2]
        tile = int(self.module.tile)
        size = int(self.module.resize or max(height, width))
        side = max(size, tile)  # a small image is padded to one tile
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[:size, :size] = resize_image(array, size)
        windows = self._windows(array, clicks, size, side, tile)
        out = np.zeros((side, side), np.float32)
        fallback = DeviceFallback(self.device, model=self.module, autocast=self.autocast)
        was_training = self.module.training
        self.module.eval()
        try:
            for x, y, tile_clicks, labels in windows:
                tile_pixels = canvas[y : y + tile, x : x + tile]
                tile_probs = fallback.run(functools.partial(self._predict_tile, tile_pixels, tile_clicks, labels))
                region = out[y : y + tile, x : x + tile]
                np.maximum(region, tile_probs, out=region)
        finally:
            fallback.restore()
            self.module.train(was_training)
        probs = out[:size, :size]
        if (height, width) != (size, size):
            probs = cv2.resize(probs, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(probs, 0.0, 1.0).astype(np.float32, copy=False)

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
        self, tile: np.ndarray, clicks: np.ndarray, labels: np.ndarray | None, device: torch.device
    ) -> np.ndarray:
        """One (T, T, 3) uint8 tile and its (P, 2) clicks -> (T, T) float32 maximum over the clicks' masks; with
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
            labels_ = torch.ones(coords.shape[:3], dtype=torch.int64, device=device)
            # choose each click's mask and drop the unsure ones at the decoder's 256 px, then upsample only
            # those (the same bilinear resize decode would do for all three): 3x less of the costliest step
            logits, iou = module.net.decode(embeddings, coords, labels_, module.multimask_output, output_size=0)
            keep = iou.amax(-1)[0] >= module.min_predicted_iou
            if keep.any():
                best = select_best(logits, iou)[0][keep].float()  # [n, 256, 256]
                upsampled = F.interpolate(best[:, None], size=(side, side), mode="bilinear", align_corners=False)
                tile_logits = torch.maximum(tile_logits, upsampled[:, 0].amax(0))
        return tile_logits.sigmoid().float().cpu().numpy()  # sigmoid(-inf) = 0 where no click was kept
