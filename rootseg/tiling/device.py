"""Where tiles run: the device a command asked for, bf16 autocast on CUDA, and the move to the CPU when the GPU
runs out of memory, shared by every model's whole-image prediction.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch


def _is_cpu(device: torch.device) -> bool:
    return device.type == "cpu"


def _free_cuda_cache() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def autocast_context(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when enabled (CUDA by default in this module), else a no-op context."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class DeviceFallback:
    """Where work runs, with bf16 autocast on CUDA, and the move to the CPU when the GPU runs out of memory.

    Shared by the sliding window (`_TileRunner`, which first halves its batch) and RootSAM's whole-image
    prediction, so every model gets the same behaviour:

        fallback = DeviceFallback(device, model)
        try:
            result = fallback.run(lambda device: work(device))   # retried on the CPU after out-of-memory
        finally:
            fallback.restore()                                    # the model back where it was

    After a fallback the rest of the work stays on the CPU (without autocast); `restore` moves the model
    back to its device. Out-of-memory on the CPU itself is re-raised.
    """

    def __init__(
        self, device: str | torch.device, model: torch.nn.Module | None = None, autocast: bool | None = None
    ) -> None:
        self.device = torch.device(device)
        self.autocast = self.device.type == "cuda" if autocast is None else bool(autocast)
        self.model = model
        self._model_device: torch.device | None = None  # set when the model was moved to CPU

    def autocast_context(self):
        return autocast_context(self.device, self.autocast)

    def on_cpu(self) -> bool:
        return _is_cpu(self.device)

    def fall_back_to_cpu(self, stacklevel: int = 3, detail: str = "") -> None:
        warnings.warn(
            f"out of memory on {self.device}{detail}: predicting the rest of this image on the CPU (slow)",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        if self.model is not None:
            parameter = next(self.model.parameters(), None)
            if self._model_device is None:
                self._model_device = parameter.device if parameter is not None else None
            self.model.to("cpu")
        _free_cuda_cache()
        self.device = torch.device("cpu")
        self.autocast = False  # bf16 on the CPU is slow and was not what the user measured

    def run(self, work: Callable[[torch.device], object]):
        """`work(device)` under autocast; after out-of-memory off the CPU, once more on the CPU."""
        while True:
            try:
                with self.autocast_context():
                    return work(self.device)
            except torch.OutOfMemoryError:
                _free_cuda_cache()
                if self.on_cpu():
                    raise
                self.fall_back_to_cpu(stacklevel=4)

    def restore(self) -> None:
        """Put the model back on the device it came from after a CPU fallback."""
        if self.model is not None and self._model_device is not None:
            self.model.to(self._model_device)
            self._model_device = None


def resolve_device(name: str | None) -> torch.device:
    """auto: the GPU when there is one; a named CUDA device must exist here."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except RuntimeError as error:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name}, but CUDA is not available here; use device=cpu or device=auto")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return device
