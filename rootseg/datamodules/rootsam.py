"""RootSAM data (Parth et al.): images resized to a fixed square, cut into a tile grid, point prompts per object.

Stage 1 resizes each image to 2560 x 2560 and cuts 512 x 512 tiles; stage 2 resizes to 2048 x 2048 and cuts
1024 x 1024 tiles (`conf/stage/`). Images are resized bilinearly (area-averaged when shrinking), masks by
nearest neighbour, so a mask keeps exactly its values {0, 1, 255} and no grey value is invented. A side that
is not a multiple of the tile gets a last tile aligned to the edge (overlapping its neighbour).

One item is one tile:
    image    uint8 [3, T, T]             SAM's normalisation happens in the model (`sam_normalize`)
    mask     uint8 [T, T]                {0, 1, 255 = unlabelled}
    objects  int16 [T, T]                0 = no prompted object, i = object i - 1 (objects never overlap)
    coords   float32 [max_objects, K, 2] (x, y) in tile pixels, K = points_per_object + negative_points
    labels   int64 [max_objects, K]      1 positive, 0 negative, -1 padding
    valid    bool [max_objects]          False for padding objects (largest objects first, valid ones first)
    name     str                         "<image stem>@<x>,<y>" (tile corner in the resized image)
Object masks are `objects == i + 1`: a label map instead of [max_objects, T, T] booleans keeps a batch of
1024 px tiles at 8 MB instead of 64 MB (`object_targets` expands it on the device).

Training keeps every tile holding a promptable object plus `empty_tile_fraction` of the others, re-drawn,
re-prompted and shuffled each epoch from (seed, epoch) alone, so a killed and resumed run replays the
uninterrupted one. `negative_objects` adds that many clicks on soil per training tile, each an object whose
target is empty (SAM's negative objects: a grid click on soil must return nothing). Validation and test use
every tile holding an object of their images, prompted from the ground truth with fixed seeds (prompted
evaluation, as in the paper); with `prompt_mode` none or mixed every tile, as promptless decoding must also
leave soil tiles empty. Under DDP each validation and test tile goes to exactly one rank (never repeated into
the synchronised metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from rootseg.datamodules.cache import ImageCache
from rootseg.datamodules.datasets import PaddedForRanks
from rootseg.datamodules.unet import SeededShuffle
from rootseg.io.arrays import IGNORE_INDEX
from rootseg.prompts.sampling import label_objects, sample_points, soil_points
from rootseg.sources.base import DataSource
from rootseg.tiling.resize import tile_origins

log = logging.getLogger(__name__)

PROMPT_MODES = ("points", "none", "mixed")


def object_targets(objects: torch.Tensor, mask: torch.Tensor, n_objects: int) -> torch.Tensor:
    """Per-object uint8 targets [B, n, T, T] in {0, 1, 255} from the label map and the tile's unlabelled pixels."""
    ids = torch.arange(1, n_objects + 1, device=objects.device).view(1, -1, 1, 1)
    target = (objects[:, None] == ids).to(torch.uint8)
    return target.masked_fill_((mask == IGNORE_INDEX)[:, None], IGNORE_INDEX)


def tile_target(objects: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The tile's target for prompted metrics: prompted objects 1, soil 0, unlabelled and unprompted root 255.

    Root left without a prompt (specks under min_object_area, objects beyond max_objects) is nobody's
    error in prompted evaluation, so it counts neither as a miss nor as background.
    """
    unprompted = (mask == 1) & (objects == 0)
    return torch.where(unprompted, IGNORE_INDEX, mask.long())


class RootSAMTiles(Dataset):
    """A fixed list of (image index, tile corner) with prompts drawn per access from `(seed, index)`."""

    def __init__(
        self,
        images: ImageCache,
        tiles: Sequence[tuple[int, tuple[int, int]]],
        tile: int,
        points_per_object: int,
        max_objects: int,
        negative_points: int,
        min_object_area: int,
        object_select: str,
        seed: int | Sequence[int],
        negative_objects: int = 0,
        training: bool = True,
    ) -> None:
        self.images = images
        self.tiles = list(tiles)
        self.tile = tile
        self.points_per_object = points_per_object
        self.max_objects = max_objects
        self.negative_points = negative_points
        self.min_object_area = min_object_area
        self.object_select = object_select
        self.seed = [seed] if isinstance(seed, int) else list(seed)
        self.negative_objects = int(negative_objects)
        self.training = training

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_index, (x, y) = self.tiles[index]
        image, mask = self.images[image_index]
        t = self.tile
        image_tile = np.ascontiguousarray(image[y : y + t, x : x + t].transpose(2, 0, 1))
        mask_tile = np.ascontiguousarray(mask[y : y + t, x : x + t]).astype(np.uint8)
        rng = np.random.default_rng([*self.seed, index])
        n_max, k = self.max_objects + self.negative_objects, self.points_per_object + self.negative_points
        coords = np.zeros((n_max, k, 2), np.float32)
        labels = np.full((n_max, k), -1, np.int64)
        valid = np.zeros(n_max, bool)
        objects = np.zeros((t, t), np.int16)
        points, point_labels, masks = sample_points(
            mask_tile == 1,
            self.points_per_object,
            self.max_objects,
            self.negative_points,
            rng=rng,
            min_object_area=self.min_object_area,
            select=self.object_select,  # type: ignore[arg-type]
        )
        n = len(points)
        if n:
            coords[:n], labels[:n], valid[:n] = points, point_labels, True
            for i, object_mask in enumerate(masks):
                objects[object_mask] = i + 1
        # negative objects (training only): clicks on soil whose target is empty (no pixel of `objects` carries
        # their id); an empty training tile gets one even without them, so it teaches the decoder something
        wanted = (self.negative_objects or (0 if n else min(n_max, 1))) if self.training else 0
        negatives = soil_points(mask_tile, wanted, rng)
        m = len(negatives)
        coords[n : n + m, 0], labels[n : n + m, 0], valid[n : n + m] = negatives, 1, True
        name = self.images.samples[image_index].name
        return {
            "image": torch.from_numpy(image_tile),
            "mask": torch.from_numpy(mask_tile),
            "objects": torch.from_numpy(objects),
            "coords": torch.from_numpy(coords),
            "labels": torch.from_numpy(labels),
            "valid": torch.from_numpy(valid),
            "name": f"{name}@{x},{y}",
        }


class RootSAMDataModule(L.LightningDataModule):
    """Tiles of resized images with point prompts, for RootSAM's stages (see the module docstring).

    `cache_embeddings` / `cache_dir` are read by `RootSAMModule`, which owns the frozen encoder whose
    features are cached (`rootseg.models.embedding_cache`).
    """

    def __init__(
        self,
        source: DataSource,
        root: str | None = None,
        resize: int = 2560,
        tile: int = 512,
        empty_tile_fraction: float = 0.0,
        points_per_object: int = 1,
        max_objects: int = 16,
        negative_points: int = 0,
        min_object_area: int = 10,
        object_select: str = "largest",
        batch_size: int = 4,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        cache_images: bool = True,
        cache_embeddings: bool = False,
        cache_dir: str | Path | None = None,
        seed: int = 0,
        negative_objects: int = 0,
        prompt_mode: str = "points",
    ) -> None:
        super().__init__()
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f"prompt_mode must be one of {', '.join(PROMPT_MODES)}, not {prompt_mode!r}")
        if isinstance(negative_objects, bool) or not isinstance(negative_objects, int) or negative_objects < 0:
            raise ValueError(f"data.negative_objects must be a whole number >= 0, not {negative_objects!r}")
        if not 0.0 <= empty_tile_fraction <= 1.0:
            raise ValueError(f"data.empty_tile_fraction={empty_tile_fraction} must lie in [0, 1]")
        if not 1 <= max_objects <= 32767 or points_per_object < 1:
            raise ValueError("data.max_objects must lie in [1, 32767] and data.points_per_object be >= 1")
        if object_select not in ("largest", "random"):
            raise ValueError(f"data.object_select must be 'largest' or 'random', not {object_select!r}")
        tile_origins(resize, tile)  # raises if the tile does not fit
        if cache_embeddings and cache_dir is None:
            raise ValueError("data.cache_embeddings=true needs data.cache_dir")
        self.source = source
        self.root = root
        self.resize, self.tile = resize, tile
        self.empty_tile_fraction = empty_tile_fraction
        self.points_per_object = points_per_object
        self.max_objects = max_objects
        self.negative_points = negative_points
        self.min_object_area = min_object_area
        self.object_select = object_select
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.cache_images = cache_images
        self.cache_embeddings = cache_embeddings
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.seed = seed
        self.negative_objects = negative_objects
        self.prompt_mode = prompt_mode
        self._images: dict[str, ImageCache] = {}
        self._tiles: dict[str, tuple[list, list]] = {}

    # -- tiles -------------------------------------------------------------------------------------
    def _split(self, split: str) -> tuple[ImageCache, list, list]:
        """The split's resized images, its tiles holding an object and its tiles without one."""
        if split not in self._images:
            samples = self.source.split(split)
            if not samples:
                raise ValueError(f"the {split} split of {self.source.root} is empty")
            images = ImageCache(samples, self.cache_images, self.source.mask_threshold, resize=self.resize)
            with_root, empty = [], []
            for index in range(len(images)):
                mask = images[index][1]
                for x, y in tile_origins(self.resize, self.tile):
                    window = mask[y : y + self.tile, x : x + self.tile] == 1
                    has_object = window.sum() >= self.min_object_area and (
                        len(label_objects(window, self.min_object_area)[1]) > 0
                    )
                    (with_root if has_object else empty).append((index, (x, y)))
            self._images[split] = images
            self._tiles[split] = (with_root, empty)
            log.info(
                "%s: %d images -> %d tiles of %d px with root, %d without (resize %d)",
                split,
                len(images),
                len(with_root),
                self.tile,
                len(empty),
                self.resize,
            )
        return self._images[split], *self._tiles[split]

    def training_tiles(self, epoch: int) -> list[tuple[int, tuple[int, int]]]:
        """This epoch's training tiles: every tile with root plus a fresh draw of empty ones."""
        _, with_root, empty = self._split("train")
        rng = np.random.default_rng([self.seed, epoch])
        n_empty = int(round(self.empty_tile_fraction * len(empty)))
        chosen = [empty[i] for i in sorted(rng.choice(len(empty), n_empty, replace=False))] if n_empty else []
        tiles = with_root + chosen
        if not tiles:
            raise ValueError(
                f"no {self.tile} px training tile of {self.source.root} holds a root object of "
                f">= {self.min_object_area} px (after resizing to {self.resize}); check the masks"
            )
        return tiles

    def _dataset(self, split: str, tiles: list, seed: Sequence[int]) -> RootSAMTiles:
        images = self._split(split)[0]
        training = split == "train"
        return RootSAMTiles(
            images,
            tiles,
            self.tile,
            self.points_per_object,
            self.max_objects,
            self.negative_points,
            self.min_object_area,
            self.object_select,
            seed,
            negative_objects=self.negative_objects if training else 0,
            training=training,
        )

    def train_dataset(self, epoch: int = 0) -> RootSAMTiles:
        return self._dataset("train", self.training_tiles(epoch), (self.seed, epoch))

    def eval_dataset(self, split: str) -> RootSAMTiles:
        """Every tile with root of the split (every tile when the model also decodes without clicks), prompts
        fixed by the seed (the same every epoch and run)."""
        _, tiles, empty = self._split(split)
        if self.prompt_mode != "points":
            tiles = sorted(tiles + empty)
        if not tiles:
            raise ValueError(f"no {self.tile} px tile of the {split} split holds a root object")
        return self._dataset(split, tiles, (self.seed, 1_000_003, {"val": 1, "test": 2}.get(split, 3)))

    # -- Lightning ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        splits = ("train", "val") if stage in (None, "fit") else ("val",) if stage == "validate" else ("test",)
        for split in splits if stage != "predict" else ():
            self._split(split)

    def _loader(self, dataset: Dataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and sampler is None,
        )

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        dataset = self.train_dataset(epoch)
        # the order depends on (seed, epoch) alone, not on the global RNG: a resumed run replays its epochs
        return self._loader(dataset, self.batch_size, SeededShuffle(len(dataset), self.seed * 100_003 + epoch))

    def _eval_loader(self, split: str) -> DataLoader:
        """Under DDP each tile on exactly one rank (Lightning's default sampler would repeat tiles to even out
        the ranks and count them twice in the synchronised metrics); a rank beyond the tiles gets a placeholder
        that counts in no metric."""
        dataset: Dataset = self.eval_dataset(split)
        sampler = None
        world = self.trainer.world_size if self.trainer is not None else 1
        if world > 1:
            if len(dataset) < world:
                dataset = PaddedForRanks(dataset, world)
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=world, rank=self.trainer.global_rank, shuffle=False
            )
        return self._loader(dataset, self.eval_batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
