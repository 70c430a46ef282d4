"""Failing before hours of work when outputs could not be written: an unwritable folder or a full disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def check_writable(folder: Path | str, min_free_mb: float, what: str) -> None:
    """Fail before hours of work when outputs could not be written: an unwritable folder or a full disk."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {folder}: {probe} is a file, not a folder; choose another {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        test = folder / f".rootseg_write_test.{os.getpid()}"
        test.write_bytes(b"ok")
        test.unlink()
    except OSError as error:
        raise PermissionError(
            f"{what} {folder} is not writable ({error.strerror or error}); choose a folder you can write to"
        ) from error
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < min_free_mb:
        raise OSErrorNoSpace(
            f"{what} {folder}: only {free_mb:.0f} MB free on its disk, at least {min_free_mb:.0f} MB needed "
            "(min_free_disk_mb); free some space or write elsewhere"
        )


class OSErrorNoSpace(ValueError):
    """Too little free disk for the outputs; a ValueError so the entry points print it as one paragraph."""
