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
from rootseg.sources.base import DataLayoutError, Sample
from rootseg.sources.folder import FolderSource

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


def _check_mask_values(sample: Sample, raw: np.ndarray, report: CheckReport) -> None:
    values = np.unique(raw[..., :3].max(axis=-1) if raw.ndim == 3 else raw)
    binary = set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255} or raw.dtype == bool
    if binary or (raw.ndim == 3 and raw.shape[2] == 4):
        return
    shown = values[:8].tolist() + (["..."] if values.size > 8 else [])
    if sample.mask_path.suffix.lower() in LOSSLESS:
        report.problems.append(
            Problem(str(sample.mask_path), f"mask is not binary: values {shown}; read as root where > threshold", False)
        )


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
    _check_mask_values(sample, raw, report)
    labelled = mask != 255
    fraction = float((mask == 1).sum() / max(labelled.sum(), 1))
    if fraction == 0:
        report.problems.append(Problem(str(sample.mask_path), "mask holds no root", False))
    elif fraction == 1:
        report.problems.append(Problem(str(sample.mask_path), "mask is root everywhere", False))
    return image.shape[:2], fraction


def check_source(source: FolderSource) -> CheckReport:
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
    try:
        splits = source.splits() if not problems else {"all": list(samples.values())}
    except ImageReadError:
        # a mask the split rule could not read: check_sample reports it below, once, under its own name
        splits = {"all": list(samples.values())}
    except DataLayoutError as error:
        report.problems.append(Problem(str(source.root), str(error)))
        splits = {"all": list(samples.values())}
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
    if "train" in splits and "val" in splits:
        overlap = {s.name for s in splits["train"]} & {s.name for s in splits["val"]}
        if overlap:
            report.problems.append(
                Problem(str(source.root), f"{len(overlap)} image(s) in both train and val: {sorted(overlap)[:5]}")
            )
    return report
