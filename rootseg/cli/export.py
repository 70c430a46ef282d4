"""`python -m rootseg.export ckpt_path=CKPT format=onnx|torchscript [output=PATH] [check_image=PATH]`.

The library is `rootseg.export` (`run.export`).

RootSAM checkpoints: `format=onnx [+multimask=true|false]` exports the prompt encoder + mask decoder (below).

Exports a trained U-Net for use outside rootseg (onnxruntime, C++, RootPainter-style tools):

- input `tiles`: (B, 3, tile_in, tile_in) float32 raw pixel values 0-255, RGB; B is dynamic. Each tile
  is min-max normalised inside the model (as in training), so callers do no preprocessing.
- output `root_prob`: (B, tile_out, tile_out) root probability (`outputs=probs`, the default), or
  `logits`: (B, 2, tile_out, tile_out) (`outputs=logits`). The spatial size is fixed: valid convolutions
  map tile_in to tile_out (572 -> 388 for Smith et al.'s net), and whole images are covered by the
  sliding window (`rootseg.tiling.window`), which accepts the exported model as its `predict_tiles`.

The sizes are stored with the model (ONNX metadata_props, TorchScript extra file `rootseg.json`). After
writing, the exported model is run on a real tile (cut from `check_image`, else from the synthetic scan
`generate_sample(0, (512, 512))`) at batch 1 and 3 and compared with PyTorch, and the whole check image is
predicted through `rootseg.inference.predictor.Predictor` with the exported file as its tile model and with
the checkpoint; the largest absolute differences are reported, and the export fails (no file is left) when
one exceeds `atol`.

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

import hydra
from omegaconf import DictConfig

from rootseg.cli import errors
from rootseg.config.run_config import CONFIG_DIR
from rootseg.export.run import export


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    with errors.user_errors():
        export(cfg)


def entry() -> None:
    """The `rootseg-export` console script and `python -m rootseg.export`."""
    errors.run(main, "export")


if __name__ == "__main__":
    entry()
