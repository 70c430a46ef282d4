"""`data=folder`: images/ and masks/ matched by stem, with split.json or Smith et al.'s split rule."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from rootseg.io.images import IMAGE_SUFFIXES
from rootseg.io.masks import read_mask
from rootseg.sources.base import SPLITS, CachedSplits, DataLayoutError, Sample, files_by_stem
from rootseg.sources.splits import check_disjoint, read_split_file

log = logging.getLogger(__name__)


class FolderSource(CachedSplits):
    """`root/images/<stem>.<ext>` with `root/masks/<stem><mask_suffix>.<ext>`.

    Splits come from `root/<split_file>` ({"train": [stems], "val": [...], "test": [...]}); without one,
    Smith et al.'s rule: sort images by root-pixel count and take evenly spaced ones for val (and test).
    A split file without "test" uses "val" for testing.
    """

    def __init__(
        self,
        root: str | Path,
        images_dir: str = "images",
        masks_dir: str = "masks",
        mask_suffix: str = "",
        split_file: str | None = "split.json",
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        mask_threshold: int = 127,
    ) -> None:
        self.root = Path(root).expanduser()
        self.images_dir = images_dir
        self.masks_dir = masks_dir
        self.mask_suffix = mask_suffix
        self.split_file = split_file
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.mask_threshold = mask_threshold
        self._splits: dict[str, list[Sample]] | None = None

    def match(self) -> tuple[dict[str, Sample], list[str]]:
        """Image/mask pairs by stem, and one problem line per unmatched or duplicated file."""
        if not self.root.is_dir():
            raise DataLayoutError(f"{self.root}: data root does not exist (set data.root=DIR)")
        images, problems = files_by_stem(self.root / self.images_dir, "image")
        masks, mask_problems = files_by_stem(self.root / self.masks_dir, "mask")
        problems += mask_problems
        suffix = self.mask_suffix
        by_image = {stem + suffix: stem for stem in images}
        no_mask = [images[stem] for stem in images if stem + suffix not in masks]
        no_image = [masks[m] for m in masks if m not in by_image]
        problems += [f"{p}: image has no mask {self.masks_dir}/{p.stem}{suffix}.*" for p in no_mask]
        problems += [f"{p}: mask has no image in {self.images_dir}/ with a matching stem" for p in no_image]
        samples = {stem: Sample(stem, images[stem], masks[stem + suffix]) for stem in images if stem + suffix in masks}
        return samples, problems

    def samples(self) -> dict[str, Sample]:
        """Every image with its mask, by stem; raises on unmatched or duplicated files."""
        samples, problems = self.match()
        suffix = self.mask_suffix
        if problems:
            raise DataLayoutError(
                f"{len(problems)} unmatched or duplicated file(s) under {self.root} (mask_suffix={suffix!r}):\n  "
                + "\n  ".join(problems[:20])
            )
        if not samples:
            raise DataLayoutError(f"{self.root / self.images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
        return samples

    def split_names(self) -> dict[str, list[str]] | None:
        """The split file's names, checked (`rootseg.sources.splits.read_split_file`; lists the folders, reads
        no pixel); None without a split file (Smith's rule then makes the splits)."""
        split_path = self.root / self.split_file if self.split_file else None
        if split_path is None or not split_path.is_file():
            return None
        samples, _ = self.match()
        return read_split_file(split_path, samples.keys(), self.root / self.images_dir)

    def check_splits(self) -> None:
        """The cheap split checks that every train, eval and check runs before reading any image."""
        self.split_names()

    def _make_splits(self) -> dict[str, list[Sample]]:
        samples = self.samples()
        names = self.split_names()
        if names is not None:
            splits = {k: [samples[s] for s in names.get(k, [])] for k in SPLITS}
            if not splits["test"]:
                splits["test"] = splits["val"]
            return splits
        return self._smith_split(samples)

    def _smith_split(self, samples: dict[str, Sample]) -> dict[str, list[Sample]]:
        """Sort by root pixels, take evenly spaced images, so val and test span sparse to dense rooting."""
        counts = {}
        for stem, sample in samples.items():
            counts[stem] = int((read_mask(sample.mask_path, self.mask_threshold) == 1).sum())
        ordered = sorted(samples, key=lambda s: (counts[s], s))
        n = len(ordered)
        picked: dict[str, list[str]] = {"val": [], "test": []}
        remaining = list(ordered)
        for split, fraction in (("test", self.test_fraction), ("val", self.val_fraction)):
            k = int(round(fraction * n))
            if k == 0 or len(remaining) <= 1:
                continue
            idx = np.unique(np.linspace(0, len(remaining) - 1, min(k, len(remaining) - 1)).round().astype(int))
            picked[split] = [remaining[i] for i in idx]
            remaining = [s for s in remaining if s not in picked[split]]
        splits = {
            "train": [samples[s] for s in remaining],
            "val": [samples[s] for s in picked["val"]],
            "test": [samples[s] for s in picked["test"] or picked["val"]],
        }
        same = () if picked["test"] else ("test",)  # test = val when test_fraction gives none
        check_disjoint({k: [s.name for s in v] for k, v in splits.items()}, self.root, same=same)
        log.info("no split file in %s: Smith rule gave %s", self.root, {k: len(v) for k, v in splits.items()})
        return splits
