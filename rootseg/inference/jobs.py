"""Which images a predict run segments and under which output names: folders, globs, one file, and shards.

`shard=K/N` gives the run every N-th image starting at the K-th (0-based) of the sorted input list, so N
processes or SLURM array jobs started with the same input split it between them without talking to each
other, and together they segment every image exactly once.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rootseg.inference.outputs import EXTRA_SUFFIXES
from rootseg.io.images import IMAGE_SUFFIXES
from rootseg.io.paths import resolved


@dataclass(frozen=True)
class Job:
    path: Path  # the input image
    stem: str  # output file stem

    @property
    def name(self) -> str:
        return self.path.name


def find_images(spec: str | Path) -> list[Path]:
    """A folder's images (non-recursive, sorted, hidden files skipped), a glob's images, or one file."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [p for p in path.iterdir() if not p.name.startswith(".") and (p.is_file() or p.is_symlink())]
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise FileNotFoundError(f"input={text}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return sorted(images)
    if path.is_file():
        return [path]
    if glob.has_magic(text):
        matches = [Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True)]
        images = sorted(p for p in matches if (p.is_file() or p.is_symlink()) and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f"input={text}: the pattern matches no image files")
        return images
    raise FileNotFoundError(f"input={text}: no such folder or file, and not a glob pattern")


def plan_jobs(images: list[Path], output: Path) -> list[Job]:
    """Output stems for the images; `a.jpg` beside `a.png` become `a_jpg` and `a_png`."""
    output_resolved = resolved(output)
    for image in images:
        if resolved(image).parent == output_resolved or resolved(image.parent) == output_resolved:
            raise ValueError(
                f"output={output} is the folder the input image {image} is in: masks would overwrite or be "
                "read as inputs; choose another output folder"
            )
    counts = Counter(p.stem for p in images)
    jobs = [Job(p, f"{p.stem}_{p.suffix.lstrip('.').lower()}" if counts[p.stem] > 1 else p.stem) for p in images]
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.stem in seen:
            raise ValueError(
                f"{seen[job.stem]} and {job.path} would write the same outputs ({job.stem}.png); "
                "predict them into separate output folders"
            )
        seen[job.stem] = job.path
    check_output_names(seen)
    return jobs


def check_output_names(stems: dict[str, object], earlier: dict[str, object] | None = None) -> None:
    """Refuse an image whose mask would land on another image's outputs: `a_rve.png` beside `a.png` (its mask
    is a_rve.png, a's RhizoVision mask too), among this run's images (`stems`: stem -> what it came from) and
    against the images earlier runs wrote into the folder (`earlier`)."""
    known = {**(earlier or {}), **stems}
    for stem in stems:
        for suffix in EXTRA_SUFFIXES:
            if stem + suffix in known:  # this image's output is another image's mask
                owner, named = stem, stem + suffix
            elif stem.endswith(suffix) and stem[: -len(suffix)] in known:  # this image's mask is another's output
                owner, named = stem[: -len(suffix)], stem
            else:
                continue
            raise ValueError(
                f"{named}.png would be both the mask of {known[named]} and the {suffix} output of "
                f"{known[owner]}: an image named <name>{{{','.join(EXTRA_SUFFIXES)}}}.* cannot share an output "
                "folder with <name>.*. Rename one, or predict them into separate output folders"
            )


def parse_shard(value: object) -> tuple[int, int]:
    """`shard=K/N` -> (K, N) with 0 <= K < N; null -> (0, 1), the whole input."""
    if value in (None, ""):
        return 0, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(
            f"shard={value!r}: give shard=K/N with 0 <= K < N (the K-th of N processes, counted from 0), "
            "e.g. shard=0/4 ... shard=3/4"
        )
    return int(match[1]), int(match[2])


def shard_jobs(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Every `count`-th job from the `index`-th: shards are disjoint and cover the input together."""
    return jobs[index::count]
