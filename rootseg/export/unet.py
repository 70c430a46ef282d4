"""The U-Net as a file for use outside rootseg: its tiles in, root probability (or logits) out, and the checks
that the file computes what PyTorch computes, tile by tile and over a whole image through the one predictor."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import MethodType, SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.io.images import read_image

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


OUTPUT_KINDS = ("probs", "logits")


INPUT_NAME = "tiles"


CHECK_BATCHES = (1, 3)


#: the lowest ONNX opset torch.onnx's exporter (dynamo=True) writes: below it, it converts at best effort and
#: keeps 18 when that fails, so an older opset is refused rather than silently written as 18
MIN_OPSET = 18


def check_opset(value: Any) -> int:
    """The `opset=` to export with, refused before any work when the exporter cannot write it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_OPSET:
        raise ValueError(
            f"opset={value}: torch.onnx's exporter writes ONNX opset {MIN_OPSET} or newer (older opsets come out "
            f"as {MIN_OPSET}); give an opset >= {MIN_OPSET} (21, the default, keeps GroupNorm as one op)"
        )
    return value


def check_written_opset(proto: Any, asked: int) -> None:
    """The file holds the opset asked for; the exporter may quietly write another."""
    written = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    if written != [asked]:
        raise ExportError(
            f"opset={asked}: the exporter wrote ONNX opset {', '.join(map(str, written)) or 'none'} instead; "
            "nothing was written. Give an opset this torch and onnxscript support"
        )


def whole_image_difference(module: Any, run: Any, path: Path, image: np.ndarray) -> float:
    """max |p_exported - p_pytorch| over a whole image, both through `rootseg.inference.predictor.Predictor`
    with its default settings: the exported file as the sliding window's tile model versus the checkpoint."""
    settings = InferenceSettings(device="cpu", precision="fp32")
    reference = Predictor(module, settings).probabilities(image)
    exported = SimpleNamespace(
        kind="unet",
        threshold=module.threshold,
        tile_in=module.tile_in,
        tile_out=module.tile_out,
        eval_step=module.eval_step,
        eval_blend=module.eval_blend,
        eval_tta=module.eval_tta,
        eval_batch_size=module.eval_batch_size,
        device=torch.device("cpu"),
        predict_tiles=lambda tiles: torch.from_numpy(run(path, tiles.float().cpu())),
        to=lambda device: None,
        eval=lambda: None,
    )
    # the module's own whole-image window (the one U-Net path) around the exported file's tiles
    exported.predict_probs = MethodType(type(module).predict_probs, exported)
    got = Predictor(exported, settings).probabilities(image)
    return float(np.abs(got - reference).max())


class ExportError(RuntimeError):
    """The exported model could not be written or does not reproduce PyTorch's output."""


class TileModel(nn.Module):
    """The U-Net with its output reduced to what callers use: root probability (or raw logits)."""

    def __init__(self, net: nn.Module, outputs: str = "probs") -> None:
        super().__init__()
        if outputs not in OUTPUT_KINDS:
            raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
        self.net = net
        self.probs = outputs == "probs"

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        logits = self.net(tiles)
        return torch.softmax(logits, dim=1)[:, 1] if self.probs else logits


# ------------------------------------------------------------------------------------------- check tile
def check_image(image_path: str | Path | None = None) -> np.ndarray:
    """The scan the export is checked on: `check_image=`, else the synthetic `generate_sample(0, (512, 512))`."""
    if image_path:
        return read_image(image_path)
    from rootseg.synthetic.generator import generate_sample

    return generate_sample(0, (512, 512)).image


def check_tiles(tile_in: int, image: np.ndarray, batch: int = 3) -> torch.Tensor:
    """(batch, 3, tile_in, tile_in) float32 0-255: a real tile and its flips, so the batch items differ."""
    h, w = image.shape[:2]
    pad_y, pad_x = max(tile_in - h, 0), max(tile_in - w, 0)
    if pad_y or pad_x:  # mirror like the sliding window does, for images smaller than a tile
        pads = ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0))
        image = np.pad(image, pads, mode="symmetric")
        h, w = image.shape[:2]
    top, left = (h - tile_in) // 2, (w - tile_in) // 2
    tile = torch.from_numpy(np.ascontiguousarray(image[top : top + tile_in, left : left + tile_in]))
    tile = tile.permute(2, 0, 1).float()
    variants = [tile, tile.flip(-1), tile.flip(-2), tile.flip(-2, -1)]
    return torch.stack([variants[i % len(variants)] for i in range(batch)])


# -------------------------------------------------------------------------------------------- exporters
def _export_onnx(model: TileModel, example: torch.Tensor, path: Path, opset: int) -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter needs it; fail here with the fix)
    except ImportError as error:
        raise ExportError(f"ONNX export needs onnx and onnxscript: pip install onnx onnxscript ({error})") from error
    batch = torch.export.Dim("batch", min=1, max=4096)
    output_name = "root_prob" if model.probs else "logits"
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[output_name],
        dynamic_shapes=({0: batch},),
        opset_version=opset,
        external_data=False,
        verbose=False,
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    check_written_opset(proto, opset)
    return proto


def _run_onnx(path: Path, tiles: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: tiles.numpy()})[0]


def _export_torchscript(model: TileModel, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    # GroupNorm's batch-size check becomes a constant in the trace (a TracerWarning); it only validates, so
    # the traced graph still serves any batch size, which the parity check then confirms at batch 1 and 3.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"rootseg.json": json.dumps(metadata)})


def _run_torchscript(path: Path, tiles: torch.Tensor) -> np.ndarray:
    loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return loaded(tiles).numpy()


# ----------------------------------------------------------------------------------------------- export
def default_output(ckpt_path: str | Path, fmt: str) -> Path:
    ckpt = Path(ckpt_path).expanduser()
    return ckpt.with_name(ckpt.stem + FORMATS[fmt])
