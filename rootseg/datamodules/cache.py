"""The one image cache: decoded (and, for RootSAM's stages, resized) images and masks a data module keeps in
memory between epochs, so tiles are cut without reading files again."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rootseg.io.masks import read_pair
from rootseg.sources.base import Sample
from rootseg.tiling.resize import resize_pair


class ImageCache:
    """Images and masks of a split by index, read once: a 2550 x 2273 JPEG takes ~60 ms to decode and each
    training image yields up to 40 tiles per epoch. `resize` squares them to the stage's size first (RootSAM);
    `enabled=False` reads them afresh every time (for data sets larger than memory)."""

    def __init__(
        self, samples: Sequence[Sample], enabled: bool = True, mask_threshold: int = 127, resize: int | None = None
    ) -> None:
        self.samples = list(samples)
        self.enabled = enabled
        self.mask_threshold = mask_threshold
        self.resize = resize
        self._store: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self._store:
            return self._store[index]
        sample = self.samples[index]
        pair = read_pair(sample.image_path, sample.mask_path, self.mask_threshold)
        if self.resize is not None:
            pair = resize_pair(pair[0], pair[1].astype(np.uint8), self.resize)
        if self.enabled:
            self._store[index] = pair
        return pair

    def mask(self, index: int) -> np.ndarray:
        return self[index][1]
