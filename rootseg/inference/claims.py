"""Which files in a predict output folder are predict's own, and which image each image's outputs came from.

Before it writes any output of an image, predict records the image's source in `.rootseg/sources/<stem>.json`:
its real path, size, modification time and SHA-256. A resumed run skips an image only when the image done
earlier under that name is this one: the same path, size and time, or else the same size and content (a moved
or copied folder). Another image of the same name (`tubeB/img001.png` after `tubeA/img001.png` into one
folder) is refused by name, never skipped as done; `overwrite=true` replaces the earlier one's outputs.

A folder no predict run wrote into (no `.rootseg/`) is refused when it holds a file of a name predict would
write, so a mistyped `output=` never overwrites a user's files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from stat import S_ISREG
from typing import Any

from rootseg.inference.jobs import Job, check_output_names
from rootseg.inference.locks import STATE_DIR, state_dir
from rootseg.inference.outputs import output_paths
from rootseg.io.atomic import write_text
from rootseg.io.files import read_json_object, sha256_file
from rootseg.io.paths import resolved

#: files predict writes beside the images' outputs (rootseg.inference.records, rootseg.inference.folder)
TABLE_NAMES = ("results.csv", "ranked.csv", "failures.csv", "predict_config.yaml")
_SHOWN = 5  # conflicts named in one error


def _stat(path: Path) -> os.stat_result:
    """The source's stat; OSError for anything but a regular file (a link to /dev/zero is never hashed)."""
    stat = os.stat(path)
    if not S_ISREG(stat.st_mode):
        raise OSError(f"{path}: not a regular file")
    return stat


def source_identity(path: Path) -> dict[str, Any]:
    """What says which image an output came from: real path, size, modification time, content hash."""
    stat = _stat(path)
    return {
        "path": str(resolved(path)),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256_file(path),
    }


def _folder(output: Path) -> Path:
    folder = state_dir(output) / "sources"
    folder.mkdir(exist_ok=True)
    return folder


def write_claim(output: Path, job: Job) -> None:
    """Mark the outputs of `job.stem` as predict's, from `job.path`: written before any of them. An image that
    cannot be read gets none (reading it reports why, by name, and writes no output)."""
    try:
        identity = source_identity(job.path)
    except OSError:
        return
    write_text(_folder(output) / f"{job.stem}.json", json.dumps(identity))


def _same_source(claim: dict[str, Any], path: Path) -> bool | None:
    """Whether `path` is the image of `claim`; None when the image cannot be read (reported when segmented)."""
    try:
        stat = _stat(path)
        if claim.get("path") == str(resolved(path)) and (claim.get("size"), claim.get("mtime_ns")) == (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return True
        return claim.get("size") == stat.st_size and claim.get("sha256") == sha256_file(path)
    except OSError:
        return None


def _record_path(output: Path, stem: str) -> str | None:
    """The source path in an image's record (a run before source claims existed), or None."""
    record = read_json_object(output / STATE_DIR / "records" / f"{stem}.json")
    return None if record is None or not isinstance(record.get("path"), str) else record["path"]


def check_foreign_files(output: Path, jobs: Sequence[Job], save_probs: str, rve: bool) -> None:
    """Before predict first writes into `output`: refuse when the folder holds a file of a name it would write."""
    if (output / STATE_DIR).is_dir() or not output.is_dir():
        return
    names = [output / name for name in TABLE_NAMES]
    names += [path for job in jobs for path in output_paths(output, job.stem, save_probs, rve).values()]
    found = [path for path in names if path.exists() or path.is_symlink()]
    if found:
        shown = ", ".join(path.name for path in found[:_SHOWN]) + (" ..." if len(found) > _SHOWN else "")
        raise ValueError(
            f"output={output} holds {len(found)} file(s) no predict run wrote, of names predict would write "
            f"({shown}); predict overwrites only its own outputs. Choose a new or empty output folder"
        )


def check_claims(output: Path, jobs: Sequence[Job], overwrite: bool) -> list[Job]:
    """Before any work: refuse (unless `overwrite`) an image whose name an earlier, finished image holds in
    `output`; returns the jobs done earlier from this very image (to skip), claiming those a run before source
    claims did. Also refuses an image whose mask would land on an earlier image's outputs."""
    folder = _folder(output)
    earlier = {path.stem: _record_path(output, path.stem) for path in (output / STATE_DIR / "records").glob("*.json")}
    earlier |= {path.stem: (read_json_object(path) or {}).get("path") for path in folder.glob("*.json")}
    finished = {k: v or f"an earlier image ({k})" for k, v in earlier.items() if (output / f"{k}.png").is_file()}
    check_output_names({job.stem: job.path for job in jobs}, finished)
    ours, conflicts = [], []
    for job in jobs:
        if not (output / f"{job.stem}.png").is_file():
            continue  # not done: segmented now, whatever wrote its name before
        claim = read_json_object(folder / f"{job.stem}.json")
        if claim is not None:
            same, was = _same_source(claim, job.path), claim.get("path")
        else:  # a run before source claims: its record names the path
            was = _record_path(output, job.stem)
            same = was is None or resolved(Path(was)) == resolved(job.path)
            if same:
                write_claim(output, job)
        if same is False:
            conflicts.append(f"{job.path} (done earlier from {was})")
        else:  # None: unreadable now; skipped as done, as before claims
            ours.append(job)
    if conflicts and not overwrite:
        shown = "; ".join(conflicts[:_SHOWN]) + (
            f"; and {len(conflicts) - _SHOWN} more" if len(conflicts) > _SHOWN else ""
        )
        raise ValueError(
            f"output={output} already holds the outputs of {len(conflicts)} image(s) of the same name(s) but "
            f"other content: {shown}. Predict these images into another output folder, or give overwrite=true "
            "to replace the earlier images' outputs"
        )
    return ours
