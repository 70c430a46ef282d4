"""Checkpoints written beside their final path, then renamed: a kill mid-write keeps the previous file.

Lightning's own atomic save stages the file in $TMPDIR and moves it; when $TMPDIR is another file system
(node-local /tmp on a cluster, the run directory on shared storage) that move is a copy, and a job killed
during the copy leaves a truncated last.ckpt that resuming cannot read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from rootseg.io.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` into a hidden temporary file in the checkpoint's own folder, then `os.replace`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        # through a Python file: a full disk is then an OSError (ENOSPC) naming the checkpoint, which the
        # commands print as one paragraph; torch.save onto a path raises a RuntimeError ("unexpected pos")
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
            torch.save(checkpoint, handle)
