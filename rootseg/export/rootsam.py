"""RootSAM's trained half as ONNX: prompt encoder + mask decoder for one tile's embeddings and any number of
objects and clicks; the frozen image encoder stays in PyTorch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from rootseg.export.unet import ExportError, check_image, check_tiles, check_written_opset
from rootseg.io.atomic import atomic_path

log = logging.getLogger(__name__)


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


def _metadata(cfg: DictConfig, net: Any, tile: int, multimask: bool) -> dict[str, Any]:
    """What travels with the ONNX file, so a user knows which encoder's features it expects."""
    return {
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


def _write_onnx(decoder: nn.Module, features: dict, tile: int, path: Path, opset: int, metadata: dict) -> None:
    import onnx

    example = rootsam_check_clicks(tile, 3, 2)
    objects = torch.export.Dim("objects", min=1, max=4096)
    clicks = torch.export.Dim("clicks", min=1, max=64)
    with torch.no_grad():
        torch.onnx.export(
            decoder,
            (*features.values(), *example),
            str(path),
            dynamo=True,
            input_names=list(ROOTSAM_INPUTS),
            output_names=list(ROOTSAM_OUTPUTS),
            dynamic_shapes=(None, None, None, {0: objects, 1: clicks}, {0: objects, 1: clicks}),
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    check_written_opset(proto, opset)
    for key, value in metadata.items():
        proto.metadata_props.add(key=f"rootseg.{key}", value=str(value))
    onnx.save(proto, str(path))


def _compare(decoder: nn.Module, features: dict, tile: int, path: Path) -> dict[str, float]:
    """max |ONNX - PyTorch| of logits and IoU for each (objects, clicks) of ROOTSAM_CHECK_CLICKS."""
    diffs = {}
    for n, k in ROOTSAM_CHECK_CLICKS:
        coords, labels = rootsam_check_clicks(tile, n, k)
        with torch.no_grad():
            expected = [t.numpy() for t in decoder(*features.values(), coords, labels)]
        got = _run_rootsam_onnx(path, {**features, "point_coords": coords, "point_labels": labels})
        for name, a, b in zip(ROOTSAM_OUTPUTS, got, expected):
            if a.shape != b.shape:
                raise ExportError(f"exported RootSAM decoder returned {name} of shape {a.shape}, PyTorch {b.shape}")
        diffs[f"{n}x{k}"] = max(float(np.abs(a - b).max()) for a, b in zip(got, expected))
    return diffs


def export_rootsam(cfg: DictConfig, module: Any, fmt: str) -> dict[str, Any]:
    """Export RootSAM's prompt encoder + mask decoder to ONNX and check it against PyTorch."""
    if fmt != "onnx":
        raise ValueError(
            f"{cfg.ckpt_path} is a RootSAM checkpoint: its prompt encoder + mask decoder export to ONNX only "
            "(format=onnx)"
        )
    try:
        import onnx  # noqa: F401  (written by _write_onnx; fail here with the fix)
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
    pixels = check_tiles(tile, check_image(cfg.get("check_image")), batch=1)
    with torch.no_grad():
        embeddings = net.encode(sam_normalize(pixels))
    features = {
        "image_embed": embeddings["image_embed"],
        "high_res_feat_s0": embeddings["high_res_feats"][0],
        "high_res_feat_s1": embeddings["high_res_feats"][1],
    }
    decoder = RootSAMDecoder(net, tile, multimask).eval()
    metadata = _metadata(cfg, net, tile, multimask)
    with atomic_path(output) as tmp:
        _write_onnx(decoder, features, tile, tmp, int(cfg.opset), metadata)
        diffs = _compare(decoder, features, tile, tmp)
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
