"""Does a RootSAM checkpoint's IoU head tell good masks from bad, and root clicks from soil clicks? SAM's filtered
grid keeps a click's mask only when the head's predicted IoU is high; a head that predicts ~0 for every mask (the
first small model of this study) makes the filter keep nothing.

On the validation tiles of the checkpoint's own data: every root object's distance-transform click (as `val/`)
and `--soil` clicks on soil per tile (SAM's negative objects), decoded one mask per click. Prints one JSON object:
the predicted IoU's quantiles for root and for soil clicks, its Spearman correlation with the mask's real IoU on
root clicks, and the AUC with which it ranks root clicks above soil clicks.

    python experiments/rootsam_modes/iou_head.py --ckpt CKPT [--soil 4] [--batches 24]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from scipy.stats import mannwhitneyu, spearmanr  # noqa: E402

from rootseg.datamodules.rootsam import object_targets  # noqa: E402
from rootseg.inference.rootsam import stability_scores  # noqa: E402
from rootseg.prompts.sampling import soil_points  # noqa: E402
from rootseg.tasks.checkpoints import CheckpointLoadError, load_module  # noqa: E402


def collect(ckpt: Path, soil: int, batches: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Predicted and real IoU of each root click's mask, and predicted IoU and root pixels of each soil click's."""
    module = load_module(ckpt, expected_kind="rootsam").eval()
    data = OmegaConf.create(module.run_config["data"])
    data.prompt_mode = "points"
    datamodule = hydra.utils.instantiate(data)
    datamodule.setup("validate")
    loader = torch.utils.data.DataLoader(datamodule.eval_dataset("val"), batch_size=datamodule.eval_batch_size)
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {key: [] for key in ("root_pred", "root_real", "root_stable", "soil_pred", "soil_stable")}
    out["soil_pixels"] = []
    with torch.inference_mode():
        for index, batch in enumerate(loader):
            if index >= batches:
                break
            embeddings = module.embeddings(batch["image"])
            valid = batch["valid"]
            n = int(valid.sum(1).max()) if valid.numel() else 0
            if n:
                logits, iou = module.net.decode(
                    embeddings, batch["coords"][:, :n].float(), batch["labels"][:, :n], False
                )
                targets = object_targets(batch["objects"], batch["mask"], n)
                hard, truth = logits[:, :, 0] > 0, targets == 1
                labelled = targets != 255
                inter = (hard & truth & labelled).flatten(2).sum(-1).float()
                union = ((hard | truth) & labelled).flatten(2).sum(-1).float().clamp_min(1)
                keep = valid[:, :n]
                out["root_pred"] += iou[:, :, 0][keep].tolist()
                out["root_real"] += (inter / union)[keep].tolist()
                out["root_stable"] += stability_scores(logits[:, :, 0].flatten(0, 1)).view(keep.shape)[keep].tolist()
            masks = batch["mask"].numpy()
            clicks = [soil_points(m, soil, rng) for m in masks]
            if soil and all(len(c) == soil for c in clicks):
                coords = torch.from_numpy(np.stack(clicks))[:, :, None]  # [B, soil, 1, 2]: one object per click
                labels = torch.ones(coords.shape[:3], dtype=torch.long)
                logits, iou = module.net.decode(embeddings, coords, labels, False)
                out["soil_pred"] += iou[:, :, 0].flatten().tolist()
                out["soil_pixels"] += (logits[:, :, 0] > 0).flatten(2).sum(-1).flatten().tolist()
                out["soil_stable"] += stability_scores(logits[:, :, 0].flatten(0, 1)).tolist()
    return {key: np.asarray(value, float) for key, value in out.items()}


def summary(found: dict[str, np.ndarray]) -> dict[str, object]:
    root, soil = found["root_pred"], found["soil_pred"]

    def quantiles(values: np.ndarray) -> list[float] | None:
        return np.quantile(values, (0.1, 0.5, 0.9)).round(4).tolist() if len(values) else None

    auc = mannwhitneyu(root, soil).statistic / (len(root) * len(soil)) if len(root) and len(soil) else None
    return {
        "root_clicks": len(root),
        "soil_clicks": len(soil),
        "root_predicted_iou_q10_q50_q90": quantiles(root),
        "root_real_iou_q10_q50_q90": quantiles(found["root_real"]),
        "soil_predicted_iou_q10_q50_q90": quantiles(soil),
        "soil_clicks_with_an_empty_mask": float(np.mean(found["soil_pixels"] == 0)) if len(soil) else None,
        "spearman_predicted_vs_real_iou_root": float(spearmanr(root, found["root_real"]).statistic)
        if len(root) > 2
        else None,
        "auc_root_over_soil": None if auc is None else round(float(auc), 4),
        "root_stability_q10_q50_q90": quantiles(found["root_stable"]),
        "soil_stability_q10_q50_q90": quantiles(found["soil_stable"]),
        "min_predicted_iou_chosen": separating_threshold(root, soil),
    }


def separating_threshold(root: np.ndarray, soil: np.ndarray) -> float | None:
    """The predicted-IoU threshold that best tells root clicks (kept) from soil clicks (dropped): the largest
    kept-root minus kept-soil fraction (Youden's J), for the grid's `min_predicted_iou` on this model."""
    if not len(root) or not len(soil):
        return None
    candidates = np.unique(np.concatenate([root, soil]))
    j = [(root >= t).mean() - (soil >= t).mean() for t in candidates]
    return round(float(candidates[int(np.argmax(j))]), 4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--soil", type=int, default=4, help="soil clicks per tile")
    parser.add_argument("--batches", type=int, default=24, help="validation batches to read")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        found = collect(args.ckpt, args.soil, args.batches)
    except CheckpointLoadError as error:
        raise SystemExit(str(error)) from None
    result = summary(found) | {"checkpoint": str(args.ckpt)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
