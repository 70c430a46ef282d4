"""Torch datasets: random U-Net training tiles, and whole images for validation and testing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from rootseg.datamodules.cache import ImageCache
from rootseg.io.masks import read_pair
from rootseg.sources.base import Sample
from rootseg.tiling.training import center_crop, cut_training_tile

log = logging.getLogger(__name__)


class TileDataset(Dataset):
    """Fixed list of (image index, output-region corner) drawn for one epoch; augmented on access."""

    def __init__(
        self,
        cache: ImageCache,
        corners: Sequence[tuple[int, tuple[int, int]]],
        tile_in: int,
        tile_out: int,
        transform: Callable | None = None,
        seed: int = 0,
    ) -> None:
        self.cache = cache
        self.seed = seed
        self.corners = list(corners)
        self.tile_in = tile_in
        self.tile_out = tile_out
        self.transform = transform

    def __len__(self) -> int:
        return len(self.corners)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image_index, corner = self.corners[index]
        image, mask = self.cache[image_index]
        image_tile, mask_tile = cut_training_tile(image, mask, corner, self.tile_in, self.tile_out)
        if self.transform is not None:
            # albumentations keeps its own RNG: seed it per tile so a run is reproducible whatever the
            # worker count and order (seed_everything does not reach it)
            if hasattr(self.transform, "set_random_seed"):
                self.transform.set_random_seed(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))
            out = self.transform(image=np.ascontiguousarray(image_tile), mask=np.ascontiguousarray(mask_tile))
            image_tile, mask_tile = out["image"], out["mask"]
        target = center_crop(mask_tile, self.tile_out)
        # dtype conversion in numpy, not torch's .float() / .long(): in the main process (num_workers=0) torch's
        # intra-op threads spin on a loaded machine and made the image copy ~15x slower (benchmarks/dataloader.py)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image_tile.transpose(2, 0, 1), dtype=np.float32)),
            "mask": torch.from_numpy(np.ascontiguousarray(target, dtype=np.int64)),
        }


class FullImageDataset(Dataset):
    """Whole images for validation/testing: metrics are computed on the re-assembled full image."""

    def __init__(self, samples: Sequence[Sample], mask_threshold: int = 127) -> None:
        self.samples = list(samples)
        self.mask_threshold = mask_threshold

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image, mask = read_pair(sample.image_path, sample.mask_path, self.mask_threshold)
        return {"image": torch.from_numpy(image), "mask": torch.from_numpy(mask), "name": sample.name}


class PaddedForRanks(Dataset):
    """A split with fewer images than DDP ranks, padded to `size` items: the images, then placeholders (copies
    of the first images with `placeholder=True`) so that every rank gets one item. A rank that gets no item
    would never log the synchronised metrics and the others would wait for it at the epoch's end; evaluation
    steps count a placeholder in no metric and no record (`RootSegModule.validation_step`)."""

    def __init__(self, dataset: Dataset, size: int) -> None:
        self.dataset, self.size = dataset, max(int(size), len(dataset))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        n = len(self.dataset)
        return {**self.dataset[index % n], "placeholder": index >= n}
