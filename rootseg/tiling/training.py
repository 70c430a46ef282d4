"""Where U-Net training tiles come from: Smith et al.'s random tiles that hold root."""

from __future__ import annotations

import numpy as np


def mirror_pad(array: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pad the first two axes by any amount, even more than the array's own size."""
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="symmetric")


def sample_training_tiles(
    mask: np.ndarray,
    tile_out: int,
    candidates: int = 90,
    max_tiles: int = 40,
    rng: np.random.Generator | None = None,
) -> list[tuple[int, int]]:
    """Draw `candidates` random output-region corners (y, x); keep those whose tile_out x tile_out
    region holds root, at most `max_tiles` (Smith et al. 2020: 90 drawn, <= 40 kept per image per epoch).

    Corners lie in the unpadded image; a region may run past the border of an image smaller than one
    tile, where the mirror padding supplies the pixels.
    """
    rng = rng if rng is not None else np.random.default_rng()
    h, w = mask.shape
    ys = rng.integers(0, max(h - tile_out, 0) + 1, size=candidates)
    xs = rng.integers(0, max(w - tile_out, 0) + 1, size=candidates)
    root = mask == 1
    # summed-area table: root count of any region in O(1)
    table = np.pad(root.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    kept: list[tuple[int, int]] = []
    for y, x in zip(ys.tolist(), xs.tolist()):
        y1, x1 = min(y + tile_out, h), min(x + tile_out, w)
        if table[y1, x1] - table[y, x1] - table[y1, x] + table[y, x] > 0:
            kept.append((y, x))
            if len(kept) == max_tiles:
                break
    return kept


def cut_training_tile(
    image: np.ndarray, mask: np.ndarray, corner: tuple[int, int], tile_in: int, tile_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input tile (tile_in, with the valid-conv context around the output region) and the mask over the
    same pixels; the caller crops the central tile_out region of the mask after augmentation."""
    margin = (tile_in - tile_out) // 2
    y, x = corner
    h, w = mask.shape
    top, left = margin - y, margin - x
    bottom, right = y + tile_out + margin - h, x + tile_out + margin - w
    y0, x0 = max(y - margin, 0), max(x - margin, 0)
    image_tile = image[y0 : y + tile_out + margin, x0 : x + tile_out + margin]
    mask_tile = mask[y0 : y + tile_out + margin, x0 : x + tile_out + margin]
    pads = (max(top, 0), max(bottom, 0), max(left, 0), max(right, 0))
    if any(pads):
        image_tile = mirror_pad(image_tile, *pads)
        mask_tile = mirror_pad(mask_tile, *pads)
    return image_tile, mask_tile


def center_crop(array: np.ndarray, size: int) -> np.ndarray:
    dy = (array.shape[0] - size) // 2
    dx = (array.shape[1] - size) // 2
    return array[dy : dy + size, dx : dx + size]
