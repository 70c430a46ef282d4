"""Synthetic data sets on disk: images/, masks/, lengths.csv, truth.json (`rootseg.synthetic.truth`), split.json
and a manifest that says when the folder is stale (generator version, size, seed), so `data=synthetic` builds it
once and reuses it.

A set replaces only what an earlier set wrote: the target must be missing, an empty folder, or a folder whose
manifest says a synthetic set was written there and that holds nothing else (`check_replaceable`), so a typo in
the output path never deletes a user's files.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rootseg.io.locks import exclusive
from rootseg.synthetic.generator import GENERATOR_VERSION, generate_sample

log = logging.getLogger(__name__)


def _manifest(n: int, size: tuple[int, int], seed: int, val_fraction: float, test_fraction: float) -> dict:
    return {
        "generator": GENERATOR_VERSION,
        "n": int(n),
        "size": [int(size[0]), int(size[1])],
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
    }


def _split(stems: list[str], seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Seeded shuffle; val and test get at least one image each when asked for and n >= 3."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction {val_fraction} + test_fraction {test_fraction} must leave training data")
    n = len(stems)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if n >= 3:
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    while n_val + n_test >= n and n_val + n_test > 0:  # keep at least one training image
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    order = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(2**31,))).permutation(n)
    shuffled = [stems[i] for i in order]
    val, test = shuffled[:n_val], shuffled[n_val : n_val + n_test]
    train = shuffled[n_val + n_test :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


#: what a set holds at its top level (the manifest is the mark that rootseg wrote the folder)
SET_FILES = frozenset({"images", "masks", "lengths.csv", "split.json", "truth.json", "manifest.json"})
_SAMPLE = re.compile(r"^synth_\d{4,}\.png$")


def _foreign_entry(out: Path) -> str | None:
    """The first entry of `out` that no synthetic set wrote, or None when the folder holds only a set's files."""
    for entry in sorted(out.iterdir()):
        if entry.name not in SET_FILES:
            return entry.name
        if entry.name in ("images", "masks"):
            if not entry.is_dir() or entry.is_symlink():
                return entry.name
            for sample in sorted(entry.iterdir()):
                if not (_SAMPLE.match(sample.name) and sample.is_file() and not sample.is_symlink()):
                    return f"{entry.name}/{sample.name}"
        elif not entry.is_file() or entry.is_symlink():
            return entry.name
    return None


def check_replaceable(out: Path) -> None:
    """Refuse a target that is a file, or a non-empty folder that is not a synthetic set with nothing added:
    replacing it would delete files this module did not write."""
    if out.is_symlink():
        raise ValueError(f"{out} is a symbolic link: give the folder it points to, or a new folder's path")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder: a synthetic set is a folder; give a new folder's path")
    if not out.exists() or not any(out.iterdir()):
        return
    manifest = _read_manifest(out)
    if not (isinstance(manifest, dict) and "generator" in manifest):
        raise ValueError(
            f"{out} is a folder that holds other files and no synthetic set (no manifest.json of one): writing a "
            "set there would delete them; give a new or empty folder"
        )
    foreign = _foreign_entry(out)
    if foreign is not None:
        raise ValueError(
            f"{out} holds a synthetic set and also {foreign}, which no set wrote: replacing the set would delete "
            "it; move it away or give a new or empty folder"
        )


def write_dataset(
    out: Path | str,
    n: int,
    size: tuple[int, int] = (512, 512),
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Path:
    """Write images, masks, lengths, truth, split and manifest; built in a sibling folder, swapped in at the end."""
    if n < 1:
        raise ValueError(f"n={n}: need at least one image")
    out = Path(out).expanduser()
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stems = [f"synth_{i:04d}" for i in range(n)]
    split = _split(stems, seed, val_fraction, test_fraction)  # validate fractions before any work
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))  # new: nobody else's folder
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would become the set's folder
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        rows, truths = [], {}
        root_seq = np.random.SeedSequence(int(seed))
        for i, stem in enumerate(stems):
            child = np.random.SeedSequence(root_seq.entropy, spawn_key=(i,))
            sample = generate_sample(child, size)
            if not cv2.imwrite(str(tmp / "images" / f"{stem}.png"), sample.image[..., ::-1]):
                raise OSError(f"{tmp / 'images' / stem}.png: cannot write")
            if not cv2.imwrite(str(tmp / "masks" / f"{stem}.png"), sample.mask * np.uint8(255)):
                raise OSError(f"{tmp / 'masks' / stem}.png: cannot write")
            rows.append((stem, f"{sample.centreline_length:.3f}", int(sample.mask.sum())))
            truths[stem] = sample.truth
        with open(tmp / "lengths.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "centreline_length_px", "root_pixels"])
            writer.writerows(rows)
        (tmp / "split.json").write_text(json.dumps(split, indent=1) + "\n")
        (tmp / "truth.json").write_text(json.dumps(truths, indent=1) + "\n")
        manifest = _manifest(n, size, seed, val_fraction, test_fraction)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        # A directory cannot be renamed onto a non-empty one: move the old set aside first.
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))  # empty: renamed onto
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _read_manifest(root: Path) -> object:
    try:
        return json.loads((root / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _manifest_matches(root: Path, expected: dict) -> bool:
    if _read_manifest(root) != expected:
        return False
    images = root / "images"
    if not (root / "truth.json").is_file():  # a set written before truth.json existed: written again
        return False
    return all((images / f"synth_{i:04d}.png").is_file() for i in range(expected["n"]))


def ensure_dataset(
    root: Path | str,
    n: int,
    size: tuple[int, int],
    seed: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Path:
    """Reuse `root` if it holds exactly this set (same manifest), else generate it: cheap on every run."""
    root = Path(root).expanduser()
    expected = _manifest(n, size, seed, val_fraction, test_fraction)
    if _manifest_matches(root, expected):
        return root
    # DDP ranks (and parallel runs) ask at once: one writes, the others wait and then reuse its set, never
    # swapping a new copy in under a reader
    root.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(root.parent / f".{root.name}.lock"):
        if _manifest_matches(root, expected):
            return root
        log.info("generating synthetic set in %s (n=%d, size=%s, seed=%d)", root, n, tuple(size), seed)
        return write_dataset(root, n, size, seed, val_fraction, test_fraction)
