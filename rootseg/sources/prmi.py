"""PRMI (Plant Root Minirhizotron Imagery, Xu et al. 2022) as a data source, with its official splits.

Assumed layout of the release (Dryad doi:10.5061/dryad.2v6wwpzp4, `PRMI_official.zip`; taken from code that
reads the release, not checked against the archive itself):

    PRMI_official/{train,val,test}/
        images/<Species>_<W>x<H>_DPI<dpi>/<stem>.jpg         (Switchgrass: <stem>.png tiles)
        masks_pixel_gt/<Species>_<W>x<H>_DPI<dpi>/GT_<stem>.png
        labels_image_gt/<Species>_<W>x<H>_DPI<dpi>_<split>.json
            [{"image_name": "<stem>.jpg", "binary_mask": "GT_<stem>.png", "crop": "Cotton", "has_root": 1,
              "location": ..., "tube_num": ..., "depth": ..., "date": ..., "dpi": ...}, ...]

The reader is tolerant: `root` may be PRMI_official/ or its parent, the metadata JSON is optional (species,
tube, depth and date are then parsed from `<Species>_T<tube>_L<depth>_<yyyy.mm.dd>_...` file names),
masks may be named `GT_<stem>` or `<stem>`, and images without a pixel mask (PRMI annotates ~63K of ~72K
images at pixel level) are skipped with a log line. The official split is by tube, so it does not leak
near-duplicate frames of one tube between train and test; keep it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseg.io.masks import read_mask
from rootseg.sources.base import SPLITS, DataLayoutError, Sample, files_by_stem
from rootseg.sources.splits import SplitByFolder

log = logging.getLogger(__name__)


IMAGES_DIR, MASKS_DIR, LABELS_DIR = "images", "masks_pixel_gt", "labels_image_gt"


MASK_PREFIX = "GT_"


NAME_RE = re.compile(
    r"^(?P<species>[A-Za-z]+)_T(?P<tube>[A-Za-z0-9]+)_L(?P<depth>[A-Za-z0-9]+)_(?P<date>\d{4}[.\-_]\d{2}[.\-_]\d{2})"
)


@dataclass
class _Found:
    """What matching PRMI's folders finds, accumulated folder by folder."""

    samples: dict[str, Sample] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    which: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    no_mask: int = 0
    no_root: int = 0


class PRMISource(SplitByFolder):
    """PRMI's train/val/test folders as splits; `species` keeps some of its species (or imaging folders).

    `metadata[name]` holds split, species, folder, tube, depth, date and has_root per sample (plus every
    field of the release's JSON entry), so results can be broken down by species or depth.
    """

    def __init__(
        self,
        root: str | Path,
        species: list[str] | str | None = None,
        only_with_root: bool = False,
        mask_threshold: int = 127,
    ) -> None:
        self.root = Path(root).expanduser()
        self.species = [species] if isinstance(species, str) else list(species) if species else None
        self.only_with_root = only_with_root
        self.mask_threshold = mask_threshold
        self._metadata: dict[str, dict[str, Any]] | None = None
        self._which: dict[str, str] = {}
        self._splits: dict[str, list[Sample]] | None = None

    @property
    def base(self) -> Path:
        """The folder holding train/ val/ test/: `root` itself or `root/PRMI_official`."""
        nested = self.root / "PRMI_official"
        return nested if nested.is_dir() and not (self.root / "train").is_dir() else self.root

    @property
    def metadata(self) -> dict[str, dict[str, Any]]:
        if self._metadata is None:
            self.match()
        assert self._metadata is not None
        return self._metadata

    def folders(self) -> dict[str, list[str]]:
        """Imaging folders (e.g. Cotton_736x552_DPI150) per split, before the species filter."""
        return {
            split: sorted(p.name for p in (self.base / split / IMAGES_DIR).iterdir() if p.is_dir())
            for split in SPLITS
            if (self.base / split / IMAGES_DIR).is_dir()
        }

    def _wanted(self, folder: str) -> bool:
        return self.species is None or any(self._wanted_one(s, folder) for s in self.species)

    def match(self) -> tuple[dict[str, Sample], list[str]]:
        """Images with a pixel mask by stem, and one problem line per orphan mask, duplicate or bad JSON."""
        folders = self._checked_folders()
        found = _Found()
        for split, split_folders in folders.items():
            for folder in filter(self._wanted, split_folders):
                self._match_folder(split, folder, found)
        self._metadata, self._which = found.metadata, found.which
        log.info(
            "PRMI %s%s: %s; skipped %d image(s) without a pixel mask%s",
            self.base,
            f" ({', '.join(self.species)})" if self.species else "",
            {s: sum(v == s for v in found.which.values()) for s in SPLITS},
            found.no_mask,
            f" and {found.no_root} without root" if self.only_with_root else "",
        )
        return found.samples, found.problems

    def _checked_folders(self) -> dict[str, list[str]]:
        """The PRMI folders per split, after checking the root exists and every species asked for has one."""
        if not self.root.is_dir():
            raise DataLayoutError(f"{self.root}: PRMI root does not exist (set data.root=DIR)")
        folders = self.folders()
        if not folders:
            raise DataLayoutError(
                f"{self.base}: no {{train,val,test}}/{IMAGES_DIR}/ folders; expected the PRMI_official layout "
                f"(<split>/{IMAGES_DIR}/<Species>_WxH_DPIn/*.jpg with <split>/{MASKS_DIR}/... masks)"
            )
        available = sorted({f for fs in folders.values() for f in fs})
        if self.species is not None:
            unknown = [s for s in self.species if not any(self._wanted_one(s, f) for f in available)]
            if unknown:
                raise DataLayoutError(
                    f"{self.base}: no PRMI folder for species {unknown}; available: "
                    f"{sorted({f.split('_')[0] for f in available})} (or folder names {available})"
                )
        return folders

    def _match_folder(self, split: str, folder: str, found: _Found) -> None:
        """Pair one species folder's images with their masks and label entries."""
        images, dup = files_by_stem(self.base / split / IMAGES_DIR / folder, "image")
        found.problems += dup
        mask_folder = self.base / split / MASKS_DIR / folder
        masks, dup = files_by_stem(mask_folder, "mask") if mask_folder.is_dir() else ({}, [])
        found.problems += dup
        entries, json_problems = _read_labels(self.base / split / LABELS_DIR / f"{folder}_{split}.json")
        found.problems += json_problems
        used: set[str] = set()
        for stem, image_path in images.items():
            entry = entries.get(stem, {})
            mask_stem = Path(str(entry["binary_mask"])).stem if entry.get("binary_mask") else None
            mask_stem = next((m for m in (mask_stem, MASK_PREFIX + stem, stem) if m and m in masks), None)
            if mask_stem is None:
                found.no_mask += 1
                continue
            used.add(mask_stem)
            if stem in found.samples:
                found.problems.append(
                    f"{image_path} and {found.samples[stem].image_path}: two PRMI images share the stem"
                )
                continue
            meta = _metadata(stem, split, folder, entry)
            sample = Sample(stem, image_path, masks[mask_stem])
            if self.only_with_root and not self._has_root(meta, sample):
                found.no_root += 1
                continue
            found.samples[stem], found.metadata[stem], found.which[stem] = sample, meta, split
        found.problems += [
            f"{path}: mask has no image in {self.base / split / IMAGES_DIR / folder}"
            for m, path in masks.items()
            if m not in used and m.removeprefix(MASK_PREFIX) not in images
        ]

    @staticmethod
    def _wanted_one(species: str, folder: str) -> bool:
        return species.lower() in {folder.lower(), folder.split("_")[0].lower()}

    def _has_root(self, meta: dict[str, Any], sample: Sample) -> bool:
        """The metadata's has_root; without metadata, whether the mask holds a root pixel (reads it)."""
        if meta.get("has_root") is not None:
            return bool(int(meta["has_root"]))
        assert sample.mask_path is not None
        return bool((read_mask(sample.mask_path, self.mask_threshold) == 1).any())

    def samples(self) -> dict[str, Sample]:
        samples, problems = self.match()
        if problems:
            raise DataLayoutError(f"{len(problems)} problem(s) under {self.base}:\n  " + "\n  ".join(problems[:20]))
        if not samples:
            raise DataLayoutError(f"{self.base}: no PRMI image with a pixel mask (species={self.species})")
        return samples

    def _split_origin(self) -> Path:
        return self.base


def _read_labels(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The release's per-folder metadata by image stem; absent file: no metadata, not an error."""
    if not path.is_file():
        return {}, []
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return {}, [f"{path}: not valid JSON ({error})"]
    if isinstance(data, dict):  # tolerate {"images": [...]} or {name: entry}
        data = next((v for v in data.values() if isinstance(v, list)), None) or [
            {"image_name": k, **v} for k, v in data.items() if isinstance(v, dict)
        ]
    entries = {}
    for entry in data:
        if isinstance(entry, dict) and entry.get("image_name"):
            entries[Path(str(entry["image_name"])).stem] = entry
    if data and not entries:
        return {}, [f'{path}: no entry with an "image_name" (expected a list of objects)']
    return entries, []


def _metadata(stem: str, split: str, folder: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Split, species, tube, depth, date and has_root: from the JSON entry, else parsed from the file name."""
    parsed = NAME_RE.match(stem)
    from_name = parsed.groupdict() if parsed else {}
    return {
        **entry,
        "split": split,
        "folder": folder,
        "species": entry.get("crop") or from_name.get("species") or folder.split("_")[0],
        "tube": entry.get("tube_num") or (f"T{from_name['tube']}" if from_name else None),
        "depth": entry.get("depth") or (f"L{from_name['depth']}" if from_name else None),
        "date": entry.get("date") or from_name.get("date"),
        "has_root": entry.get("has_root"),
    }
