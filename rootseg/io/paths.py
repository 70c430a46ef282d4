"""Whether two paths name one file: outputs must never land on the inputs a command reads."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def resolved(path: Path | str) -> Path:
    """The real path (symbolic links and `..` followed); a symbolic link loop stays as it is (reading it reports
    the loop by name)."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(Path(path).expanduser()))


def _inode(path: Path | str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:  # missing: it cannot be an existing file under another name
        return None
    return stat.st_dev, stat.st_ino


def refuse_output_on_inputs(outputs: Iterable[Path], inputs: Iterable[Path], key: str = "output") -> None:
    """ValueError naming the output and the input when writing an output would overwrite an input (by path,
    through symbolic links or `..`, or a hard link)."""
    by_path, by_inode = {}, {}
    for output in outputs:
        by_path[resolved(output)] = Path(output)
        if (inode := _inode(output)) is not None:
            by_inode[inode] = Path(output)
    for source in inputs:
        output = by_path.get(resolved(source)) or by_inode.get(_inode(source))  # type: ignore[arg-type]
        if output is not None:
            raise ValueError(
                f"{key}={output} is also an input ({source}): writing it would overwrite a file this command "
                f"reads; choose another {key}"
            )
