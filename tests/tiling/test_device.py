"""Where tiles run (`rootseg.tiling.device`): bf16 autocast only on CUDA by default, and after a fall back to the
CPU no autocast (the sliding window's tests move a model and back)."""

from __future__ import annotations

import pytest
import torch

from rootseg.tiling.device import DeviceFallback, resolve_device


def test_autocast_defaults_to_cuda_only_and_is_dropped_on_the_cpu_fallback() -> None:
    assert DeviceFallback("cuda").autocast and not DeviceFallback("cpu").autocast
    assert DeviceFallback("cpu", autocast=True).autocast
    fallback = DeviceFallback("meta", autocast=True)  # "meta" stands in for an accelerator
    with pytest.warns(RuntimeWarning, match="out of memory on meta: predicting the rest of this image on the CPU"):
        fallback.fall_back_to_cpu()
    assert fallback.device == torch.device("cpu") and fallback.on_cpu() and not fallback.autocast


def test_auto_and_empty_mean_the_best_device_here() -> None:
    best = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == resolve_device("") == resolve_device(None) == best
    assert resolve_device("cpu") == torch.device("cpu")
