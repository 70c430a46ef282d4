"""The label convention every module shares, and the conversions that check it."""

from __future__ import annotations

import numpy as np
import torch

IGNORE_INDEX = 255  # mask value for unlabelled pixels (RootPainter transparent), skipped by loss and metrics


def to_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def as_mask(mask, name: str = "mask") -> np.ndarray:
    """A 2-D boolean root mask from bool or integer input (non-zero = root)."""
    mask = to_numpy(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"{name} must be boolean or integer (non-zero = root), got dtype {mask.dtype}; "
            "threshold probabilities first, e.g. probs > 0.5"
        )
    return mask != 0
