"""Is a data set usable, and if not, which files? (nnU-Net-style integrity check, read by `rootseg.check`.)

Every image has a mask and vice versa, sizes match, images and masks decode, masks are binary (the values
found are reported otherwise), split files name existing images. Training runs the same check first when
`check_data=true`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rootseg.io.images import ImageReadError, _load_array, read_image
from rootseg.io.masks import decode_mask
from rootseg.sources.base import DataLayoutError, DataSource, Sample

LOSSLESS = (".png", ".tif", ".tiff", ".bmp")


@dataclass
class Problem:
    path: str
    message: str
    error: bool = True

    def __str__(self) -> str:
        return f"{'ERROR' if self.error else 'warning'}: {self.path}: {self.message}"


@dataclass
class CheckReport:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    split_stats: dict[str, dict] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.error]

    def text(self) -> str:
        lines = [f"data check of {self.root}"]
        for split, stats in self.split_stats.items():
            sizes = ", ".join(f"{w}x{h} ({n})" for (h, w), n in stats["sizes"].most_common(4))
            fractions = stats["root_fractions"]
            root = (
                f"root {100 * np.mean(fractions):.2f} % "
                f"(min {100 * min(fractions):.2f}, max {100 * max(fractions):.2f})"
                if fractions
                else "root -"
            )
            lines.append(
                f"  {split:5s}: {stats['n']:4d} images, {stats['readable']:4d} readable; sizes {sizes}; {root}"
            )
        lines += [f"  {p}" for p in self.problems]
        n_warn = len(self.problems) - len(self.errors)
        lines.append(f"{len(self.errors)} error(s), {n_warn} warning(s)")
        return "\n".join(lines)


def _check_mask_values(sample: Sample, raw: np.ndarray, threshold: int, report: CheckReport) -> None:
    """Warn about a lossless grey or colour mask with more than two levels: read by the threshold rule."""
    if raw.dtype == bool or (raw.ndim == 3 and raw.shape[2] in (2, 4)):
        return  # boolean, or with alpha: read by exact rules (rootseg.io.masks.decode_mask)
    values = np.unique(raw.max(axis=-1) if raw.ndim == 3 else raw)
    if values.size <= 2 and (values[0] == 0 or values.size == 1):
        return  # one level, or 0 and one other (that one is root)
    if sample.mask_path.suffix.lower() not in LOSSLESS:
        return
    if values.size <= 8:
        shown = f"values {values.tolist()}"
    else:
        shown = f"{values.size} values from {values[0]:.4g} to {values[-1]:.4g}"
    if np.issubdtype(raw.dtype, np.floating) and values[-1] <= 1:
        value = "value x 255"
    else:
        value = "value" if values[-1] <= 255 else "value scaled to 0-255 by its bit depth"
    rule = f"read as root where {value} > {threshold}"
    report.problems.append(Problem(str(sample.mask_path), f"mask is not binary: {shown}; {rule}", False))


def check_sample(sample: Sample, threshold: int, report: CheckReport) -> tuple[tuple[int, int], float] | None:
    """Read one pair the way training does; record what is wrong; return (size, root fraction)."""
    try:
        image = read_image(sample.image_path)
    except ImageReadError as error:
        report.problems.append(Problem(str(sample.image_path), str(error).split(": ", 1)[-1]))
        return None
    try:
        raw = _load_array(sample.mask_path)
        mask = decode_mask(raw, threshold, sample.mask_path)
    except ImageReadError as error:
        report.problems.append(Problem(str(sample.mask_path), str(error).split(": ", 1)[-1]))
        return None
    if mask.shape != image.shape[:2]:
        report.problems.append(
            Problem(
                str(sample.mask_path),
                f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {sample.image_path.name} is "
                f"{image.shape[1]}x{image.shape[0]}",
            )
        )
        return None
    _check_mask_values(sample, raw, threshold, report)
    labelled = mask != 255
    fraction = float((mask == 1).sum() / max(labelled.sum(), 1))
    if fraction == 0:
        report.problems.append(Problem(str(sample.mask_path), "mask holds no root", False))
    elif fraction == 1:
        report.problems.append(Problem(str(sample.mask_path), "mask is root everywhere", False))
    return image.shape[:2], fraction


def _split_problem(source: DataSource, error: DataLayoutError) -> Problem:
    """A split file's error under the split file's name (the message names it too)."""
    split_file = getattr(source, "split_file", None)
    path = Path(source.root) / split_file if split_file else Path(source.root)
    message = str(error)
    return Problem(str(path), message.removeprefix(f"{path}: "))


def _source_splits(source: DataSource, samples: dict[str, Sample], problems: list, report: CheckReport) -> dict:
    """The splits to check image by image; a split problem is reported and every image is checked as 'all'."""
    everything = {"all": list(samples.values())}
    try:
        source.check_splits()  # the split file, even when files are unmatched
    except DataLayoutError as error:
        report.problems.append(_split_problem(source, error))
        return everything
    if problems:
        return everything
    try:
        return source.splits()
    except ImageReadError:
        # a mask the split rule could not read: check_sample reports it below, once, under its own name
        return everything
    except DataLayoutError as error:
        report.problems.append(Problem(str(source.root), str(error)))
        return everything


def check_source(source: DataSource) -> CheckReport:
    """Check every file of a data source; collects every problem instead of stopping at the first."""
    report = CheckReport(Path(source.root))
    try:
        samples, problems = source.match()
    except DataLayoutError as error:
        report.problems.append(Problem(str(source.root), str(error).split(": ", 1)[-1]))
        return report
    for line in problems:
        path, _, message = line.partition(": ")
        report.problems.append(Problem(path, message))
    splits = _source_splits(source, samples, problems, report)
    seen: dict[str, tuple] = {}
    for split, members in splits.items():
        stats = {"n": len(members), "readable": 0, "sizes": Counter(), "root_fractions": []}
        for sample in members:
            if sample.name not in seen:  # an image in val and test is read (and its problem reported) once
                seen[sample.name] = check_sample(sample, source.mask_threshold, report)
            result = seen[sample.name]
            if result is None:
                continue
            stats["readable"] += 1
            stats["sizes"][result[0]] += 1
            stats["root_fractions"].append(result[1])
        report.split_stats[split] = stats
    return report
