"""RootSAM's stage grids: a scan resized to the stage's square (2560 or 2048 px) and cut into edge-aligned tiles
(512 or 1024 px), as Parth et al. train and evaluate.
"""

from __future__ import annotations

import cv2
import numpy as np


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) image -> size x size: bilinear, or pixel-area averaging (antialiased) when both sides shrink."""
    if image.shape[:2] == (size, size):
        return image
    shrink = size <= image.shape[0] and size <= image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interpolation)


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image as `resize_image`, mask by nearest neighbour: its values {0, 1, 255} stay exactly those."""
    if image.shape[:2] == (size, size):
        return image, mask
    resized_mask = cv2.resize(np.ascontiguousarray(mask), (size, size), interpolation=cv2.INTER_NEAREST)
    return resize_image(image, size), resized_mask


def tile_origins(size: int, tile: int) -> list[tuple[int, int]]:
    """(x, y) corners of a grid of tile x tile tiles covering size x size; the last row/column is edge-aligned."""
    if tile > size:
        raise ValueError(f"tile {tile} is larger than the resized image {size}; set data.resize >= data.tile")
    starts = list(range(0, size - tile + 1, tile))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return [(x, y) for y in starts for x in starts]
