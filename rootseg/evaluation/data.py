"""Which images an evaluation scores: the data the user names or the checkpoint's own, and which split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rootseg.sources.base import Sample
from rootseg.sources.folder import FolderSource
from rootseg.sources.synthetic import SyntheticSource

log = logging.getLogger(__name__)


def data_config(cfg: DictConfig, module: Any) -> DictConfig:
    """The data the user named, else the data the checkpoint was trained on."""
    if cfg.get("data") is not None:
        return cfg.data
    if not module.run_config or "data" not in module.run_config:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint names no data; pass data=folder data.root=DIR")
    return OmegaConf.create(module.run_config["data"])


def split_samples(source: Any, split: str) -> list[Sample]:
    """One split of the source, or every image of it with `split=all`."""
    if split == "all":
        return [sample for _, sample in sorted(source.samples().items())]
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}: use auto, train, val, test or all")
    return source.split(split)


def resolve_split(cfg: DictConfig, source: Any, module: Any) -> tuple[str, str]:
    """The split to score and why. `split=auto` (the default) is the test split of the checkpoint's own data
    when no data is given, and of a source that defines its splits (a folder with a split file, SegRoot,
    RootPainter, PRMI, synthetic); a folder without a split file is scored whole (`all`): its test split
    would be the ~20 % share that Smith's rule sets aside, which is not what a held-out folder is for."""
    split = cfg.get("split") or "auto"
    if split != "auto":
        return split, f"split={split} given"
    if cfg.get("data") is None:
        return "test", "split=auto: the test split of the checkpoint's own data"
    if not isinstance(source, FolderSource) or isinstance(source, SyntheticSource):
        return "test", f"split=auto: the test split {type(source).__name__} defines"
    split_path = source.root / source.split_file if source.split_file else None
    if split_path is not None and split_path.is_file():
        return "test", f"split=auto: the test split of {split_path}"
    reason = (
        f"split=auto: {source.root} has no split file ({source.split_file or 'none configured'}), so every image "
        "is scored (split=test would score only the share that Smith's rule sets aside)"
    )
    trained_on = ((module.run_config or {}).get("data") or {}).get("root")
    if trained_on and Path(str(trained_on)).expanduser().resolve() == source.root.resolve():
        log.warning(
            "%s is the folder the checkpoint was trained on: 'all' includes its training images; "
            "pass split=test for the share it held out",
            source.root,
        )
    return "all", reason
