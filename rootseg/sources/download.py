"""Fetching public root data sets: recipes, resumable sha256-checked downloads, safe extraction."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rootseg.io.atomic import atomic_path, write_text
from rootseg.io.files import sha256_file

log = logging.getLogger(__name__)


MARKER = ".rootseg-download.json"


CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or extraction that cannot be trusted; the message names the URL or file and the fix."""


@dataclass(frozen=True)
class Recipe:
    name: str
    url: str
    filename: str
    # the archive's SHA-256 when this project has verified it; None: the user must pass sha256= or verify=false
    sha256: str | None
    # a digest reported elsewhere but not verified here: shown in the error as a hint, never trusted silently
    reported_sha256: str | None
    prepare: Callable[[Path, Path], list[str]]  # (extracted tree, DIR) -> the top-level entries it made in DIR
    about: str
    # the URL names immutable content (a git commit), so a download without a digest is still the known data
    content_pinned: bool = False


# --- layouts --------------------------------------------------------------------------------------------------
def segroot_split(names: list[str], seed: int = 42) -> dict[str, list[str]]:
    """SegRoot's split: `random.seed(42)`, shuffle `range(n)`, round(0.6 n) train, half the rest val, rest test.

    Indices refer to the sorted image names (SegRoot's `binarize_crop.py` numbers `sorted(glob('*Untitled.jpg'))`
    and `main_segroot.py` calls `get_ids(65)` after seeding; numpy's and torch's seeds do not touch `random`).
    """
    names = sorted(names)
    ids = list(range(len(names)))
    random.Random(seed).shuffle(ids)
    n_train = round(0.6 * len(names))
    n_val = (len(names) - n_train) // 2
    return {
        "train": [names[i] for i in ids[:n_train]],
        "val": [names[i] for i in ids[n_train : n_train + n_val]],
        "test": [names[i] for i in ids[n_train + n_val :]],
    }


def prepare_segroot(tree: Path, dest: Path) -> list[str]:
    """data/data_raw/{x.jpg, x-mask.jpg} -> DIR/images/x.jpg, DIR/masks/x-mask.jpg, DIR/split.json."""
    raw = next((p for p in sorted(tree.glob("*/data/data_raw")) if p.is_dir()), None) or tree / "data" / "data_raw"
    if not raw.is_dir():
        raise DownloadError(
            f"{tree}: the archive holds no <repo>/data/data_raw/ folder; is this the SegRoot repository?"
        )
    images = sorted(p for p in raw.glob("*.jpg") if not p.stem.endswith("-mask"))
    missing = [p.name for p in images if not (raw / f"{p.stem}-mask.jpg").is_file()]
    if not images or missing:
        raise DownloadError(f"{raw}: {len(images)} image(s); without a -mask.jpg: {missing[:5]}")
    if len(images) != 65:
        log.warning("%s: %d images, not SegRoot's 65; split.json will not be SegRoot's split", raw, len(images))
    staged = tree / ".segroot"
    (staged / "images").mkdir(parents=True)
    (staged / "masks").mkdir()
    for image in images:
        os.replace(image, staged / "images" / image.name)
        os.replace(raw / f"{image.stem}-mask.jpg", staged / "masks" / f"{image.stem}-mask.jpg")
    write_text(staged / "split.json", json.dumps(segroot_split([p.stem for p in images]), indent=1) + "\n")
    return _move_into(staged, dest)


def prepare_extracted(tree: Path, dest: Path) -> list[str]:
    """Keep the archive's own layout under DIR (PRMI_official/..., RootPainter data sets)."""
    for junk in tree.glob("__MACOSX"):
        shutil.rmtree(junk)
    return _move_into(tree, dest)


def _move_into(staged: Path, dest: Path) -> list[str]:
    """Move every top-level entry of `staged` into `dest`, refusing to replace anything already there."""
    entries = sorted(p.name for p in staged.iterdir())
    clash = [name for name in entries if (dest / name).exists()]
    if clash:
        raise DownloadError(
            f"{dest}: {clash[:5]} already exist(s) but no finished download is recorded ({MARKER}); "
            "move them away or choose another DIR"
        )
    for name in entries:
        os.replace(staged / name, dest / name)
    return entries


# verify: the commit is the one README of ../shared/datasets/segroot names; the archive's SHA-256 is not pinned
# because GitHub does not promise byte-stable archives. The commit in the URL pins the content.
SEGROOT_COMMIT = "8b83132de20de709865da07b1ab97d51d9699c3d"


RECIPES: dict[str, Recipe] = {
    "segroot": Recipe(
        name="segroot",
        url=f"https://codeload.github.com/wtwtwt0330/SegRoot/zip/{SEGROOT_COMMIT}",
        filename=f"SegRoot-{SEGROOT_COMMIT}.zip",
        sha256=None,
        reported_sha256=None,
        prepare=prepare_segroot,
        about="Wang et al. 2019, SegRoot; 65 CI-600 soybean images with masks; no licence stated by the repository",
        content_pinned=True,
    ),
    # verify: Dryad doi:10.5061/dryad.2v6wwpzp4; this file_stream id and digest come from third-party code that
    # downloads PRMI (9,748,189,339 bytes), not from a download made here. Dryad may ask a browser to prove itself.
    "prmi": Recipe(
        name="prmi",
        url="https://datadryad.org/downloads/file_stream/1319529",
        filename="PRMI_official.zip",
        sha256=None,
        reported_sha256="ce5059f92b039855bbcb5d28e346aec6bf9b26db642ab66f2c9851df4d92de5a",
        prepare=prepare_extracted,
        about="Xu et al. 2022, PRMI; CC0; also listed at zenodo.org/records/5974905",
    ),
    # verify: record 3754046 is RootPainter's data record (its own tests fetch biopores_750_training.zip from it);
    # the chicory file name below is this project's best knowledge, not checked.
    "chicory": Recipe(
        name="chicory",
        url="https://zenodo.org/records/3754046/files/towers_750_training.zip",
        filename="towers_750_training.zip",
        sha256=None,
        reported_sha256=None,
        prepare=prepare_extracted,
        about="Smith et al., chicory roots in rhizotron towers (RootPainter data, Zenodo 3754046); images only",
    ),
}


# --- download, verify, extract --------------------------------------------------------------------------------


def download(url: str, path: Path, sha256: str | None, timeout: float = 60.0) -> str:
    """Stream `url` to `path` through a temporary file; return its SHA-256. On a mismatch nothing is left."""
    path = Path(path)
    request = urllib.request.Request(url, headers={"User-Agent": "rootseg-download"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, atomic_path(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0)
            digest, done, last = hashlib.sha256(), 0, 0.0
            with open(tmp, "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if time.monotonic() - last > 2.0:
                        last = time.monotonic()
                        of = f" of {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
                        log.info("%s: %.1f%s", path.name, done / 1e6, of)
            if total and done != total:
                raise DownloadError(f"{url}: the server announced {total} bytes but sent {done}; try again")
            got = digest.hexdigest()
            if sha256 is not None and got != sha256.lower():
                raise DownloadError(
                    f"{url}: SHA-256 mismatch: expected {sha256.lower()}, got {got} ({done} bytes); the file was "
                    "removed. A changed or corrupted archive, or a wrong sha256="
                )
    except OSError as error:  # URLError, HTTPError, timeouts, resets, a full disk
        raise DownloadError(f"{url}: download failed ({error}); check the URL or pass url=MIRROR") from error
    log.info("%s: %d bytes, sha256 %s", path, done, got)
    return got


def _member_target(name: str, dest: Path, archive: Path) -> Path:
    """Where an archive member would land; raise if that is outside `dest`."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in PurePosixPath(clean).parts:
        raise DownloadError(f"{archive}: refusing to extract {name!r}: the path leaves the target folder {dest}")
    target = (dest / clean).resolve()
    if not target.is_relative_to(dest):
        raise DownloadError(f"{archive}: refusing to extract {name!r}: it would land at {target}, outside {dest}")
    return target


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into `dest` after checking every member; nothing is written if one is bad."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _member_target(info.filename, dest, archive)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DownloadError(f"{archive}: refusing to extract {info.filename!r}: a symbolic link")
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _member_target(member.name, dest, archive)
                if member.issym() or member.islnk() or member.isdev():
                    raise DownloadError(f"{archive}: refusing to extract {member.name!r}: a link or device file")
            tf.extractall(dest, filter="data")
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive (an error page saved as the download?)")


def read_marker(marker: Path) -> dict[str, Any]:
    """The record of a finished download; anything else in its place is named, not a traceback."""
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:  # not JSON, not UTF-8
        done = None
    if not isinstance(done, dict) or not isinstance(done.get("entries", []), list):
        raise ValueError(
            f"{marker}: not the record rootseg.download writes (a JSON object with name, url, sha256 and entries); "
            "remove it if the folder holds nothing else of yours, or choose another output=DIR"
        )
    return done


def is_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def _reuse_or_download(name: str, url: str, archive: Path, expected: str | None) -> str:
    """An earlier run's archive when it is verified (or, unverified, at least a zip or tar archive), else a new
    download; returns its SHA-256. A download that is no archive (an HTML login or error page) is removed."""
    if archive.is_file():
        got = sha256_file(archive)
        if expected is not None and got != expected.lower():
            log.warning("%s: sha256 %s does not match %s; downloading again", archive, got, expected)
            archive.unlink()
        elif not is_archive(archive):
            log.warning(
                "%s: neither a zip nor a tar archive (a web page kept by an earlier run?); downloading again", archive
            )
            archive.unlink()
        else:
            log.info("%s: reusing the finished download (sha256 %s)", archive, got)
            return got
    log.info("downloading %s from %s to %s", name, url, archive)
    got = download(url, archive, expected)
    if not is_archive(archive):
        head = archive.read_bytes()[:512].lstrip().lower()
        archive.unlink()
        what = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "a file"
        raise DownloadError(
            f"{url}: the server sent {what}, not a zip or tar archive (a login, consent or error page?); it was "
            "removed. Check the URL in a browser, or download the archive by hand and pass url=file:///path/to/it"
        )
    return got


def fetch(
    name: str,
    dest: str | Path,
    url: str | None = None,
    sha256: str | None = None,
    verify: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Download, verify, extract and lay out data set `name` under `dest`; a finished one is not redone."""
    if name not in RECIPES:
        raise DownloadError(f"unknown data set {name!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    dest = Path(dest).expanduser().resolve()
    url = url or recipe.url
    expected = (sha256 or recipe.sha256) if verify else None
    if verify and expected is None and not recipe.content_pinned:
        hint = f" (reported elsewhere, unverified: {recipe.reported_sha256})" if recipe.reported_sha256 else ""
        raise DownloadError(
            f"{name}: no verified SHA-256 is known for {url}; pass sha256=HEX{hint}, or verify=false to accept "
            "whatever the server sends"
        )
    marker = dest / MARKER
    if marker.is_file():
        done = read_marker(marker)
        complete = done.get("name") == name and all((dest / e).exists() for e in done.get("entries", []))
        if complete and (expected is None or done.get("sha256") == expected.lower()):
            log.info("%s already downloaded to %s (%s); nothing to do", name, dest, MARKER)
            return dest
        raise DownloadError(f"{dest}: holds a different or incomplete download ({marker}); choose another DIR")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / ".download" / recipe.filename
    got = _reuse_or_download(name, url, archive, expected)
    if expected is None:
        log.info("%s: archive sha256 %s (not checked against a known digest)", name, got)
    tree = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        safe_extract(archive, tree)
        entries = recipe.prepare(tree, dest)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    write_text(marker, json.dumps({"name": name, "url": url, "sha256": got, "entries": entries}, indent=1) + "\n")
    if not keep_archive:
        archive.unlink()
        if not any(archive.parent.iterdir()):
            archive.parent.rmdir()
    log.info("%s ready in %s: %s", name, dest, ", ".join(entries))
    return dest
