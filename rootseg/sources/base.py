"""Where the images and masks of each split are: a folder of images/ + masks/, SegRoot, or the synthetic set.

A source only lists files; reading and tiling belong to the datasets. Every problem names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rootseg.io.images import IMAGE_SUFFIXES, ImageReadError

SPLITS = ("train", "val", "test")


class DataLayoutError(ValueError):
    """The folder layout or split file is wrong; the message names the files and the fix."""


@dataclass(frozen=True)
class Sample:
    name: str
    image_path: Path
    mask_path: Path | None


@runtime_checkable
class DataSource(Protocol):
    """What every source (folder, synthetic, PRMI, RootPainter) offers the datamodules, eval and check."""

    #: what logs and errors name as "the data"
    root: Path
    #: grey level above which a mask pixel is root (`rootseg.io.masks.read_mask`)
    mask_threshold: int

    def match(self) -> tuple[dict[str, Sample], list[str]]:
        """Image/mask pairs by stem and one problem line per file that cannot be paired; lists, reads no pixel."""
        ...

    def samples(self) -> dict[str, Sample]:
        """The pairs of `match`, or DataLayoutError listing its problems."""
        ...

    def splits(self) -> dict[str, list[Sample]]:
        """train, val and test, made once."""
        ...

    def split(self, name: str) -> list[Sample]: ...

    def check_splits(self) -> None:
        """The cheap split checks every train, eval and check runs before reading any image."""
        ...


class CachedSplits:
    """The split cache and lookup every source shares: `_make_splits` runs once, at the first `splits()`."""

    _splits: dict[str, list[Sample]] | None = None

    def _make_splits(self) -> dict[str, list[Sample]]:
        raise NotImplementedError

    def splits(self) -> dict[str, list[Sample]]:
        if self._splits is None:
            self._splits = self._make_splits()
        return self._splits

    def split(self, name: str) -> list[Sample]:
        return self.splits()[name]


def files_by_stem(folder: Path, what: str) -> tuple[dict[str, Path], list[str]]:
    """Image files of a folder by stem, and a problem line for every stem used twice."""
    if not folder.is_dir():
        raise DataLayoutError(f"{folder}: no {what} folder here (expected <root>/{folder.name}/)")
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in found:
            problems.append(
                f"{path} and {found[path.stem]}: two {what} files share the stem {path.stem!r}; "
                "keep one, since images and masks are matched by stem"
            )
            continue
        found[path.stem] = path
    return found, problems


def check_readable(sample: Sample) -> None:
    """Raise ImageReadError naming the file if the sample cannot be decoded."""
    from rootseg.io.masks import read_pair

    if sample.mask_path is None:
        raise ImageReadError(f"{sample.image_path}: no mask")
    read_pair(sample.image_path, sample.mask_path)
