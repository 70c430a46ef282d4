"""`python -m rootseg.export ckpt_path=CKPT format=onnx|torchscript [output=PATH] [check_image=PATH]`.

RootSAM checkpoints: `format=onnx [+multimask=true|false]` exports the prompt encoder + mask decoder (below).

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

RootSAM (`format=onnx` only): the prompt encoder + mask decoder, the parts RootSAM trains, as one ONNX
graph for ONE tile, with the image encoder left out (it is frozen: run SAM 2.1's Hiera encoder separately,
e.g. `RootSAM.encode` in PyTorch, once per tile, as SAM 1's `SamOnnxModel` split it):

- inputs `image_embed` (1, 256, s/16, s/16), `high_res_feat_s0` (1, C0, s/4, s/4) and `high_res_feat_s1`
  (1, C1, s/8, s/8) as `RootSAM.encode` returns them for a `tile` x `tile` tile (s = SAM's image_size;
  C0 = C1 = 256, the raw backbone features, by default, the decoder's projections being in the graph; 32
  and 64 with `project_high_res_in_decode=False`), `point_coords` (N, K, 2) float32 (x, y) in tile pixels
  and `point_labels` (N, K) int64 (1 positive, 0 negative, -1 padding): N objects of K clicks, dynamic;
- outputs `mask_logits` (N, M, s/4, s/4): SAM's low-resolution logits (resize bilinearly to the tile,
  then > 0 is root), and `iou_pred` (N, M); M = 3 with `+multimask=true` (the default when the model was
  trained so), 1 with `+multimask=false`: a Python flag in sam2, so one graph per setting.

It is exported with the torch.export-based exporter (`dynamo=True`). That exporter with a dynamic *tile*
batch as well produced a graph onnxruntime rejects ("invalid expand shape" in an Expand node, torch
2.13 / onnxruntime 1.32), hence one tile per call: the objects are the batch, as in SAM's own predictor.
The check compares ONNX and PyTorch logits and IoU on a real tile's embeddings for (N, K) = (1, 1),
(3, 2), (5, 3).
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


# --------------------------------------------------------------------------------------------- RootSAM
ROOTSAM_INPUTS = ("image_embed", "high_res_feat_s0", "high_res_feat_s1", "point_coords", "point_labels")
ROOTSAM_OUTPUTS = ("mask_logits", "iou_pred")
ROOTSAM_CHECK_CLICKS = ((1, 1), (3, 2), (5, 3))  # (objects, clicks per object) compared with PyTorch


class RootSAMDecoder(nn.Module):
    """RootSAM's prompt encoder + mask decoder for one tile (`RootSAM.decode` with the tile batch of 1).

    forward(image_embed, high_res_feat_s0, high_res_feat_s1, point_coords (N, K, 2), point_labels (N, K))
    -> (mask_logits (N, M, s/4, s/4), iou_pred (N, M)).
    """

    def __init__(self, net: nn.Module, tile: int, multimask_output: bool) -> None:
        super().__init__()
        self.net = net
        self.tile = int(tile)
        self.multimask_output = bool(multimask_output)

    def forward(self, image_embed, high_res_feat_s0, high_res_feat_s1, point_coords, point_labels):
        embeddings = {
            "image_embed": image_embed,
            "high_res_feats": [high_res_feat_s0, high_res_feat_s1],
            "input_size": self.tile,
        }
        logits, iou = self.net.decode(
            embeddings, point_coords[None], point_labels[None], self.multimask_output, output_size=0
        )
        return logits[0], iou[0]


def rootsam_check_clicks(tile: int, objects: int, clicks: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(objects, clicks, 2) float32 clicks in the tile and (objects, clicks) int64 labels: the first click of
    each object positive, the others positive, negative or padding."""
    generator = torch.Generator().manual_seed(seed + 100 * objects + clicks)
    coords = torch.rand(objects, clicks, 2, generator=generator) * (tile - 1)
    labels = torch.randint(-1, 2, (objects, clicks), generator=generator)
    labels[:, 0] = 1
    return coords, labels


def _run_rootsam_onnx(path: Path, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(ROOTSAM_OUTPUTS), {name: value.numpy() for name, value in feeds.items()})


def export_rootsam(cfg: DictConfig, module: Any, fmt: str) -> dict[str, Any]:
    """Export RootSAM's prompt encoder + mask decoder to ONNX and check it against PyTorch."""
    if fmt != "onnx":
        raise ValueError(
            f"{cfg.ckpt_path} is a RootSAM checkpoint: its prompt encoder + mask decoder export to ONNX only "
            "(format=onnx)"
        )
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as error:
        raise ExportError(f"ONNX export needs onnx and onnxscript: pip install onnx onnxscript ({error})") from error
    from rootseg.models.rootsam import sam_normalize

    net = module.net.eval().cpu()
    if not getattr(net.sam, "use_high_res_features_in_sam", False):
        raise ExportError(f"{cfg.ckpt_path}: this SAM model does not use high-resolution features; not supported")
    tile = int(module.tile)
    multimask = bool(cfg.get("multimask", module.multimask_output))
    output = (
        Path(str(cfg.output)).expanduser()
        if cfg.get("output")
        else Path(str(cfg.ckpt_path)).expanduser().with_name(Path(str(cfg.ckpt_path)).stem + "_decoder.onnx")
    )
    pixels = check_tiles(tile, cfg.get("check_image"), batch=1)
    with torch.no_grad():
        embeddings = net.encode(sam_normalize(pixels))
    features = {
        "image_embed": embeddings["image_embed"],
        "high_res_feat_s0": embeddings["high_res_feats"][0],
        "high_res_feat_s1": embeddings["high_res_feats"][1],
    }
    decoder = RootSAMDecoder(net, tile, multimask).eval()
    metadata = {
        "kind": "rootsam-decoder",
        "tile": tile,
        "image_size": net.image_size,
        "multimask_output": multimask,
        "sam_config": getattr(net, "config_name", "?"),
        "sam_checkpoint": getattr(net, "ckpt_path", None),
        "encoder_fingerprint": net.encoder_fingerprint(),
        "project_high_res_in_decode": net.project_high_res_in_decode,
        "inputs": "RootSAM.encode(sam_normalize(tile)) features of one tile; clicks (N, K, 2) in tile pixels",
        "outputs": "low-resolution mask logits (N, M, s/4, s/4), resize to the tile; IoU predictions (N, M)",
        "checkpoint": str(Path(str(cfg.ckpt_path)).expanduser().resolve()),
    }
    example = rootsam_check_clicks(tile, 3, 2)
    objects = torch.export.Dim("objects", min=1, max=4096)
    clicks = torch.export.Dim("clicks", min=1, max=64)
    with atomic_path(output) as tmp:
        with torch.no_grad():
            torch.onnx.export(
                decoder,
                (*features.values(), *example),
                str(tmp),
                dynamo=True,
                input_names=list(ROOTSAM_INPUTS),
                output_names=list(ROOTSAM_OUTPUTS),
                dynamic_shapes=(None, None, None, {0: objects, 1: clicks}, {0: objects, 1: clicks}),
                opset_version=int(cfg.opset),
                external_data=False,
                verbose=False,
            )
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        for key, value in metadata.items():
            proto.metadata_props.add(key=f"rootseg.{key}", value=str(value))
        onnx.save(proto, str(tmp))
        diffs = {}
        for n, k in ROOTSAM_CHECK_CLICKS:
            coords, labels = rootsam_check_clicks(tile, n, k)
            with torch.no_grad():
                expected = [t.numpy() for t in decoder(*features.values(), coords, labels)]
            got = _run_rootsam_onnx(tmp, {**features, "point_coords": coords, "point_labels": labels})
            for name, a, b in zip(ROOTSAM_OUTPUTS, got, expected):
                if a.shape != b.shape:
                    raise ExportError(f"exported RootSAM decoder returned {name} of shape {a.shape}, PyTorch {b.shape}")
            diffs[f"{n}x{k}"] = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
        max_diff = max(diffs.values())
        if not max_diff <= float(cfg.atol):
            raise ExportError(
                f"exported RootSAM decoder differs from PyTorch by up to {max_diff:.3g} (> atol={cfg.atol}) on a "
                f"real tile's embeddings (objects x clicks {list(diffs)}); nothing was written to {output}"
            )
    summary = {
        "output": str(output),
        "format": fmt,
        "kind": "rootsam-decoder",
        "tile": tile,
        "multimask_output": multimask,
        "inputs": list(ROOTSAM_INPUTS),
        "max_abs_diff": max_diff,
        "max_abs_diff_by_clicks": diffs,
        "atol": float(cfg.atol),
        "check_tile_from": str(cfg.get("check_image") or "synthetic generate_sample(0, (512, 512))"),
    }
    log.info("exported %s (RootSAM decoder): max |ONNX - PyTorch| = %.3g", output, max_diff)
    print(json.dumps(summary))
    return summary


def export(cfg: DictConfig) -> dict[str, Any]:
    """Export the checkpoint's U-Net (or RootSAM's decoder) and check it against PyTorch; returns the path
    and the difference."""
    fmt = str(cfg.format).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {cfg.format!r}")
    outputs = str(cfg.get("outputs", "probs"))
    if outputs not in OUTPUT_KINDS:
        raise ValueError(f"outputs must be one of {OUTPUT_KINDS}, got {outputs!r}")
    module = load_module(cfg.ckpt_path)
    if module.kind == "rootsam":
        return export_rootsam(cfg, module, fmt)
    if module.kind != "unet":
        raise ValueError(f"{cfg.ckpt_path}: cannot export a {module.kind!r} model; only U-Net and RootSAM checkpoints")

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
