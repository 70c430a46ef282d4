"""Who writes into a predict output folder: one process per shard, refused with a clear message otherwise.

Locks are `fcntl.flock` locks on files in `<output>/.rootseg/`: the kernel drops them when a process dies
(SIGKILL included), so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from rootseg.io.locks import exclusive

STATE_DIR = ".rootseg"
_SHARD_LOCK = re.compile(r"^predict-(\d+)-of-(\d+)\.lock$")


def state_dir(output: Path) -> Path:
    folder = output / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _held_by_other(path: Path) -> bool:
    """Whether another process holds the lock on `path` now (a probe that never blocks)."""
    try:
        handle = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    finally:
        os.close(handle)


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def shard_lock(output: Path, index: int, count: int) -> Iterator[bool]:
    """Hold this shard's lock for the run; yields whether the run is alone in the folder (no other shard
    running), so it may remove temporary files killed runs left. Refuses a second run of the same shard and
    a run whose shard count differs from a running one's."""
    folder = state_dir(output)
    path = folder / f"predict-{index}-of-{count}.lock"
    for other in folder.iterdir():
        found = _SHARD_LOCK.match(other.name)
        if found and int(found[2]) != count and _held_by_other(other):
            raise ValueError(
                f"output={output}: {_holder(other)} is predicting into this folder as shard {found[1]}/{found[2]}; "
                f"shard={index}/{count} would split the images differently. Use the same N for every shard, or "
                "another output folder"
            )
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            which = f" as shard {index}/{count}" if count > 1 else ""
            raise ValueError(
                f"output={output}: {_holder(path)} is already predicting into this folder{which}. Two runs into one "
                "folder would write the same files; wait for it to finish (a finished or killed run releases the "
                "folder), or choose another output folder, or split the work with shard=K/N"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"rootseg.predict pid {os.getpid()} (started {time.strftime('%Y-%m-%d %H:%M:%S')})".encode())
        others = [p for p in folder.iterdir() if _SHARD_LOCK.match(p.name) and p != path and _held_by_other(p)]
        yield not others
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def folder_lock(output: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """A short exclusive section shared by every shard (rebuilding results.csv), waited for, never refused."""
    return exclusive(state_dir(output) / f"{name}.lock")
