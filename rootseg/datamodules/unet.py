"""LightningDataModules. The U-Net one follows Smith et al. 2020: each epoch, 90 random tiles per
training image, those holding root kept (at most 40); validation and test on whole images."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from rootseg.datamodules.cache import ImageCache
from rootseg.datamodules.datasets import FullImageDataset, PaddedForRanks, TileDataset
from rootseg.sources.base import DataSource
from rootseg.tiling.training import sample_training_tiles


class SeededShuffle(Sampler[int]):
    """A shuffle that depends on the seed alone, however often the loader is iterated: Lightning iterates a
    fresh loader more than once when it resumes, and a shared generator would then give another order."""

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed = length, seed

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        return iter(torch.randperm(self.length, generator=generator).tolist())


class UNetDataModule(L.LightningDataModule):
    """Training tiles are re-drawn every epoch (the trainer reloads the train loader each epoch);
    the draw is seeded by (seed, epoch), so runs and resumed runs see the same tiles."""

    def __init__(
        self,
        source: DataSource,
        root: str | None = None,
        tile_in: int = 572,
        tile_out: int = 388,
        candidates_per_image: int = 90,
        max_tiles_per_image: int = 40,
        batch_size: int = 4,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        train_transform: Callable | None = None,
        cache_images: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if tile_in <= tile_out or (tile_in - tile_out) % 2:
            raise ValueError(f"data.tile_in={tile_in} must exceed data.tile_out={tile_out} by an even margin")
        self.source = source
        self.root = root  # the config's `data.root`, which the source reads; kept for logging
        self.tile_in, self.tile_out = tile_in, tile_out
        self.candidates_per_image = candidates_per_image
        self.max_tiles_per_image = max_tiles_per_image
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.train_transform = train_transform
        self.cache_images = cache_images
        self.seed = seed
        self._train_cache: ImageCache | None = None

    def setup(self, stage: str | None = None) -> None:
        splits = self.source.splits()
        for name in ("train", "val") if stage in (None, "fit") else ("test",) if stage == "test" else ():
            if not splits[name]:
                raise ValueError(f"the {name} split of {self.source.root} is empty")
        if stage in (None, "fit") and self._train_cache is None:
            self._train_cache = ImageCache(splits["train"], self.cache_images, self.source.mask_threshold)

    def draw_corners(self, epoch: int) -> list[tuple[int, tuple[int, int]]]:
        """This epoch's training tiles as (image index, output corner)."""
        assert self._train_cache is not None, "call setup('fit') first"
        rng = np.random.default_rng([self.seed, epoch])
        corners = []
        for index in range(len(self._train_cache)):
            mask = self._train_cache.mask(index)
            kept = sample_training_tiles(mask, self.tile_out, self.candidates_per_image, self.max_tiles_per_image, rng)
            corners += [(index, corner) for corner in kept]
        if not corners:
            raise ValueError(
                f"no training tile of {self.tile_out} px holds root in {len(self._train_cache)} training images "
                f"of {self.source.root}; check the masks (root must be 1 or > threshold)"
            )
        return self._fill_to_world_size(corners, rng)

    def _fill_to_world_size(
        self, corners: list[tuple[int, tuple[int, int]]], rng: np.random.Generator
    ) -> list[tuple[int, tuple[int, int]]]:
        """Under DDP every rank needs as many tiles: top up with fresh tiles (never repeats, never drops)."""
        world = self.trainer.world_size if self.trainer is not None else 1
        while len(corners) % world:
            index = int(rng.integers(len(self._train_cache)))
            extra = sample_training_tiles(self._train_cache.mask(index), self.tile_out, 1, 1, rng)
            corners += [(index, corner) for corner in extra]
        return corners

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        epoch_seed = self.seed * 100_003 + epoch
        dataset = TileDataset(
            self._train_cache, self.draw_corners(epoch), self.tile_in, self.tile_out, self.train_transform, epoch_seed
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            # tiles, augmentation and batch order depend on (seed, epoch) only: a resumed run replays its epochs
            sampler=SeededShuffle(len(dataset), epoch_seed),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,  # a new tile list each epoch
            drop_last=False,
        )

    def _full_image_loader(self, split: str) -> DataLoader:
        dataset = FullImageDataset(self.source.split(split), self.source.mask_threshold)
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:
            if 0 < len(dataset) < self.trainer.world_size:
                # more ranks than images: the extra ranks get a placeholder that counts in no metric
                dataset = PaddedForRanks(dataset, self.trainer.world_size)
            # each image on exactly one rank: Lightning's default sampler would repeat images to even out
            # the ranks and count them twice in the synchronised metrics
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=1,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._full_image_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._full_image_loader("test")
