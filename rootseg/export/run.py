"""`export(cfg)`: a checkpoint -> an ONNX or TorchScript file, kept only when it reproduces PyTorch."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from rootseg.config import typed
from rootseg.export.rootsam import export_rootsam
from rootseg.export.unet import (
    CHECK_BATCHES,
    FORMATS,
    OUTPUT_KINDS,
    ExportError,
    TileModel,
    _export_onnx,
    _export_torchscript,
    _run_onnx,
    _run_torchscript,
    check_image,
    check_opset,
    check_tiles,
    default_output,
    whole_image_difference,
)
from rootseg.io.atomic import atomic_path
from rootseg.io.paths import refuse_output_on_inputs
from rootseg.tasks.checkpoints import load_module

log = logging.getLogger(__name__)


#: the typed settings of conf/export.yaml (rootseg.config.typed)
SETTINGS = {
    "opset": typed.Number(whole=True, low=1),
    "atol": typed.Number(low=0, low_open=True, unit="largest |exported - PyTorch|"),
}


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the checkpoint's U-Net (or RootSAM's decoder) and check it against PyTorch; returns the path
    and the difference."""
    typed.check(cfg, SETTINGS)
    fmt = str(cfg.format).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {cfg.format!r}")
    outputs = str(cfg.get("outputs", "probs"))
    if outputs not in OUTPUT_KINDS:
        raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
    if fmt == "onnx":
        check_opset(cfg.get("opset"))
    if cfg.get("output"):  # the file never lands on the checkpoint or the check image it reads
        sources = [Path(str(cfg[key])).expanduser() for key in ("ckpt_path", "check_image") if cfg.get(key)]
        refuse_output_on_inputs([Path(str(cfg.output)).expanduser()], sources)
    module = load_module(cfg.ckpt_path)
    if module.kind == "rootsam":
        return export_rootsam(cfg, module, fmt)
    if module.kind != "unet":
        raise ValueError(f"{cfg.ckpt_path}: cannot export a {module.kind!r} model; only U-Net and RootSAM checkpoints")
    return export_unet(cfg, module, fmt, outputs)


def _write(model: TileModel, example: torch.Tensor, path: Path, fmt: str, opset: int, metadata: dict[str, Any]):
    """Write the file; returns the function that runs it (path, tiles) -> numpy."""
    if fmt == "torchscript":
        _export_torchscript(model, example, path, metadata)
        return _run_torchscript
    proto = _export_onnx(model, example, path, opset)
    import onnx

    for key, value in metadata.items():
        proto.metadata_props.add(key=f"rootseg.{key}", value=str(value))
    onnx.save(proto, str(path))
    return _run_onnx


def _tile_differences(run, path: Path, tiles: torch.Tensor, expected: np.ndarray, fmt: str) -> dict[int, float]:
    diffs = {}
    for batch in CHECK_BATCHES:
        got = run(path, tiles[:batch])
        if got.shape != expected[:batch].shape:
            raise ExportError(f"exported {fmt} model returned shape {got.shape}, PyTorch {expected[:batch].shape}")
        diffs[batch] = float(np.abs(got - expected[:batch]).max())
    return diffs


def export_unet(cfg: DictConfig, module: Any, fmt: str, outputs: str) -> dict[str, Any]:
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
    image = check_image(cfg.get("check_image"))
    tiles = check_tiles(tile_in, image, batch=max(CHECK_BATCHES))
    with torch.no_grad():
        expected = model(tiles).numpy()
    with atomic_path(output) as tmp:
        run = _write(model, tiles[:2], tmp, fmt, int(cfg.opset), metadata)
        diffs = _tile_differences(run, tmp, tiles, expected, fmt)
        max_diff = max(diffs.values())
        if not max_diff <= float(cfg.atol):  # also catches NaN
            raise ExportError(
                f"exported {fmt} model differs from PyTorch by up to {max_diff:.3g} (> atol={cfg.atol}) on a "
                f"real tile (batch sizes {list(diffs)}); nothing was written to {output}"
            )
        image_diff = whole_image_difference(module, run, tmp, image) if outputs == "probs" else None
        if image_diff is not None and not image_diff <= float(cfg.atol):
            raise ExportError(
                f"exported {fmt} model differs from PyTorch by up to {image_diff:.3g} (> atol={cfg.atol}) over the "
                f"whole check image predicted by rootseg's sliding window; nothing was written to {output}"
            )
    summary = {
        "output": str(output),
        "format": fmt,
        "outputs": outputs,
        "tile_in": tile_in,
        "tile_out": tile_out,
        "max_abs_diff": max_diff,
        "max_abs_diff_by_batch": diffs,
        "max_abs_diff_whole_image": image_diff,
        "atol": float(cfg.atol),
        "check_tile_from": str(cfg.get("check_image") or "synthetic generate_sample(0, (512, 512))"),
    }
    log.info("exported %s (%s): max |exported - PyTorch| = %.3g", output, fmt, max_diff)
    print(json.dumps(summary))
    return summary
