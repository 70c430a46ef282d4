"""`python -m rootseg.export ckpt_path=CKPT format=onnx|torchscript [output=PATH] [check_image=PATH]`.

Exports a trained U-Net for use outside rootseg (onnxruntime, C++, RootPainter-style tools):

- input `tiles`: (B, 3, tile_in, tile_in) float32 raw pixel values 0-255, RGB; B is dynamic. Each tile
  is min-max normalised inside the model (as in training), so callers do no preprocessing.
- output `root_prob`: (B, tile_out, tile_out) root probability (`outputs=probs`, the default), or
  `logits`: (B, 2, tile_out, tile_out) (`outputs=logits`). The spatial size is fixed: valid convolutions
  map tile_in to tile_out (572 -> 388 for Smith et al.'s net), and whole images are covered by the
  sliding window (`rootseg.inference`), which accepts the exported model as its `predict_tiles`.

The sizes are stored with the model (ONNX metadata_props, TorchScript extra file `rootseg.json`). After
writing, the exported model is run on a real tile (cut from `check_image`, else from the synthetic scan
`generate_sample(0, (512, 512))`) at batch 1 and 3 and compared with PyTorch; the largest absolute
difference is reported, and the export fails (no file is left) when it exceeds `atol`.

RootSAM (not implemented here; a RootSAM checkpoint gets a clear error). SAM 2.1 splits into parts that
export separately: the Hiera image encoder (frozen in RootSAM, so the stock SAM 2.1 encoder of the same
size can be exported once, image -> image embedding + the two high-resolution feature maps), and the prompt
encoder + mask decoder, the only parts RootSAM trains. The latter is the natural export target, as in
SAM 1's `SamOnnxModel` (segment-anything's scripts/export_onnx_model.py): inputs image embedding, the two
high-resolution feature maps (SAM 2's decoder uses them, SAM 1's did not), point coordinates (B, P, 2)
and labels (B, P) with P dynamic (label -1 pads), outputs low-resolution mask logits and IoU scores;
upsampling to the image and thresholding stay outside. Things to handle when it is done: `repeat_image`
and `multimask_output` are Python flags (export one graph per setting), the dense no-mask embedding path,
and the memory-attention/video parts of SAM2Base, which single images do not need.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from rootseg.data.io import atomic_path, read_image
from rootseg.modules.loading import load_module
from rootseg.utils import cli
from rootseg.utils.config import CONFIG_DIR

log = logging.getLogger("rootseg.export")

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
OUTPUT_KINDS = ("probs", "logits")
INPUT_NAME = "tiles"
CHECK_BATCHES = (1, 3)


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
def check_tiles(tile_in: int, image_path: str | Path | None = None, batch: int = 3) -> torch.Tensor:
    """(batch, 3, tile_in, tile_in) float32 0-255: a real tile and its flips, so the batch items differ."""
    if image_path:
        image = read_image(image_path)
    else:
        from rootseg.data.synthetic import generate_sample

        image = generate_sample(0, (512, 512)).image
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


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the checkpoint's U-Net and check it against PyTorch; returns the path and the difference."""
    fmt = str(cfg.format).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {cfg.format!r}")
    outputs = str(cfg.get("outputs", "probs"))
    if outputs not in OUTPUT_KINDS:
        raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
    module = load_module(cfg.ckpt_path)
    if module.kind == "rootsam":
        raise NotImplementedError(
            f"{cfg.ckpt_path} is a RootSAM checkpoint: exporting RootSAM (prompt encoder + mask decoder, "
            "separately from the frozen image encoder) is not implemented yet; see rootseg/export.py's notes"
        )
    if module.kind != "unet":
        raise ValueError(f"{cfg.ckpt_path}: cannot export a {module.kind!r} model; only U-Net checkpoints")

    output = Path(str(cfg.output)).expanduser() if cfg.get("output") else default_output(cfg.ckpt_path, fmt)
    model = TileModel(module.net, outputs).eval().cpu()
    tile_in, tile_out = int(module.tile_in), int(module.tile_out)
    metadata = {
        "kind": module.kind,
        "tile_in": tile_in,
        "tile_out": tile_out,
        "outputs": outputs,
        "input": "tiles (B, 3, tile_in, tile_in) float32 RGB 0-255; per-tile min-max normalisation inside",
        "threshold": float(getattr(module, "threshold", 0.5)),
        "checkpoint": str(Path(str(cfg.ckpt_path)).expanduser().resolve()),
    }
    tiles = check_tiles(tile_in, cfg.get("check_image"), batch=max(CHECK_BATCHES))
    with torch.no_grad():
        expected = model(tiles).numpy()

    with atomic_path(output) as tmp:
        if fmt == "onnx":
            proto = _export_onnx(model, tiles[:2], tmp, int(cfg.opset))
            import onnx

            for key, value in metadata.items():
                proto.metadata_props.add(key=f"rootseg.{key}", value=str(value))
            onnx.save(proto, str(tmp))
            run = _run_onnx
        else:
            _export_torchscript(model, tiles[:2], tmp, metadata)
            run = _run_torchscript
        diffs = {}
        for batch in CHECK_BATCHES:
            got = run(tmp, tiles[:batch])
            if got.shape != expected[:batch].shape:
                raise ExportError(f"exported {fmt} model returned shape {got.shape}, PyTorch {expected[:batch].shape}")
            diffs[batch] = float(np.abs(got - expected[:batch]).max())
        max_diff = max(diffs.values())
        if not max_diff <= float(cfg.atol):  # also catches NaN
            raise ExportError(
                f"exported {fmt} model differs from PyTorch by up to {max_diff:.3g} (> atol={cfg.atol}) on a "
                f"real tile (batch sizes {list(diffs)}); nothing was written to {output}"
            )

    summary = {
        "output": str(output),
        "format": fmt,
        "outputs": outputs,
        "tile_in": tile_in,
        "tile_out": tile_out,
        "max_abs_diff": max_diff,
        "max_abs_diff_by_batch": diffs,
        "atol": float(cfg.atol),
        "check_tile_from": str(cfg.get("check_image") or "synthetic generate_sample(0, (512, 512))"),
    }
    log.info("exported %s (%s): max |exported - PyTorch| = %.3g", output, fmt, max_diff)
    print(json.dumps(summary))
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    with cli.user_errors():
        export(cfg)


if __name__ == "__main__":
    cli.run(main, "export")
