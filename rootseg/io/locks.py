"""A blocking exclusive section between processes: an `fcntl.flock` on a lock file, which the kernel drops when
the holder dies (SIGKILL included), so a killed process never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Wait until no other process holds `lock_file`, then hold it for the block (created when missing)."""
    handle = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)
