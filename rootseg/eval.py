"""`python -m rootseg.eval ckpt_path=PATH [data=folder data.root=DIR]`: the papers' numbers for a model.

Writes into the run directory: per_image.csv/.md (Smith Tables 3-4 rows, root length predicted vs
annotated), summary.json/.md (pooled, per-image mean and sd, RootSAM patch metrics at 512 and 1024,
length agreement), and figures/ (error maps, per-image F1 bars, length scatter).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rootseg import measure, metrics, reports
from rootseg.data.io import read_pair, write_text
from rootseg.modules.loading import load_module
from rootseg.utils import cli
from rootseg.utils.config import CONFIG_DIR, output_dir, save_resolved_config

log = logging.getLogger("rootseg.eval")
PATCH_SIZES = (512, 1024)


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def data_config(cfg: DictConfig, module) -> DictConfig:
    """The data the user named, else the data the checkpoint was trained on."""
    if cfg.get("data") is not None:
        return cfg.data
    if not module.run_config or "data" not in module.run_config:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint names no data; pass data=folder data.root=DIR")
    return OmegaConf.create(module.run_config["data"])


def _samples(source, split: str) -> list:
    """One split of the source, or every image of it with `split=all` (a held-out folder with no split file
    would otherwise give only the share that Smith's rule sets aside for testing)."""
    if split == "all":
        return [sample for _, sample in sorted(source.samples().items())]
    if split not in ("train", "val", "test"):
        raise ValueError(f"split={split!r}: use train, val, test or all")
    return source.split(split)


def model_info(module) -> dict[str, Any]:
    """What the checkpoint is (for `rootseg.report`, which names methods by experiment)."""
    run_config = module.run_config or {}
    return {
        "kind": module.kind,
        "experiment_name": run_config.get("experiment_name"),
        "model_target": (run_config.get("model") or {}).get("_target_"),
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        raise ValueError(
            "ckpt_path is required: python -m rootseg.eval ckpt_path=<run dir>/checkpoints/<name>.ckpt "
            "[data=folder data.root=DIR]"
        )
    run_dir = output_dir(cfg)
    save_resolved_config(cfg, run_dir)
    module = load_module(cfg.ckpt_path)
    device = _device(cfg.get("device"))
    module.to(device)
    source = hydra.utils.instantiate(data_config(cfg, module).source)
    samples = _samples(source, cfg.split)
    if not samples:
        raise ValueError(f"the {cfg.split} split of {source.root} is empty")
    log.info("evaluating %s on %d %s images of %s", cfg.ckpt_path, len(samples), cfg.split, source.root)

    mm = cfg.get("mm_per_pixel")
    rows: list[dict[str, Any]] = []
    preds, targets, patch_rows = [], [], {size: [] for size in PATCH_SIZES}
    figures_dir = run_dir / "figures"
    for index, sample in enumerate(samples):
        image, target = read_pair(sample.image_path, sample.mask_path, source.mask_threshold)
        start = time.perf_counter()
        with torch.inference_mode():
            probs = module.predict_probs(
                torch.from_numpy(image).to(device),
                step=cfg.get("eval_step"),
                blend=cfg.get("eval_blend"),
                tta=cfg.get("eval_tta"),
            )
        probs = probs.float().cpu().numpy()
        seconds = time.perf_counter() - start
        pred = probs >= module.threshold
        counts = metrics.confusion(pred, target)
        truth = target == 1
        row = {
            "name": sample.name,
            **counts,
            **metrics.scores(**counts),
            "segroot_soft_dice": metrics.segroot_soft_dice(probs, target),
            "root_pixels_true": int(truth.sum()),
            "root_pixels_pred": int(pred.sum()),
            "length_true_px": measure.skeleton_length(truth),
            "length_pred_px": measure.skeleton_length(pred),
            "seconds": seconds,
        }
        if mm:
            row["length_true_mm"] = row["length_true_px"] * mm
            row["length_pred_mm"] = row["length_pred_px"] * mm
        rows.append(row)
        preds.append(pred)
        targets.append(target)
        for size in PATCH_SIZES:
            patch_rows[size] += metrics.patch_scores(probs, target, size, module.threshold)
        if index < cfg.get("figures", 4):
            reports.error_figure(image, target, pred, figures_dir / f"{sample.name}_errors.png", sample.name)
        log.info("%s: f1=%.4f (%.1f s)", sample.name, row["f1"], seconds)

    pooled, _, summary = metrics.pooled_and_per_image(preds, targets)
    summary["no_root"] = [{"name": rows[e["index"]]["name"], "fp": e["fp"]} for e in summary["no_root"]]
    result: dict[str, Any] = {
        "checkpoint": str(cfg.ckpt_path),
        "model": model_info(module),
        "data": str(source.root),
        "split": cfg.split,
        "pooled": pooled,
        "per_image": {"mean": summary["mean"], "sd": summary["sd"], "n": summary["n_with_root"]},
        "no_root_images": summary["no_root"],
        "segroot_soft_dice_mean": float(np.mean([r["segroot_soft_dice"] for r in rows])),
        "patches": {str(s): metrics.mean_over_images(patch_rows[s], ("iou", "dice", "ap")) for s in PATCH_SIZES},
    }
    lengths_true = [r["length_true_px"] for r in rows]
    if len(rows) >= 3 and np.ptp(lengths_true) > 0:  # agreement is undefined for constant annotations
        result["length_agreement"] = measure.agreement(lengths_true, [r["length_pred_px"] for r in rows])
        measure.scatter_plot(
            [r["length_true_px"] for r in rows],
            [r["length_pred_px"] for r in rows],
            figures_dir / "root_length_agreement.png",
            "annotated root length (px)",
            "predicted root length (px)",
            "root length: prediction vs annotation",
        )
    reports.f1_bars(
        {Path(str(cfg.ckpt_path)).stem: {r["name"]: r["f1"] for r in rows}}, figures_dir / "f1_per_image.png"
    )
    _write(run_dir, rows, result)
    _print(result, run_dir)
    return result


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary as table rows: one per statistic."""
    keys = ("precision", "recall", "f1", "iou", "accuracy")
    rows = [{"statistic": "pooled over all pixels", **{k: result["pooled"][k] for k in keys}}]
    rows.append({"statistic": "per-image mean", **{k: result["per_image"]["mean"][k] for k in keys}})
    rows.append({"statistic": "per-image sd", **{k: result["per_image"]["sd"][k] for k in keys}})
    return rows


def _write(run_dir: Path, rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    reports.write_csv(run_dir / "per_image.csv", rows)
    per_image_md = reports.markdown_table(
        rows,
        [
            "name",
            "precision",
            "recall",
            "f1",
            "iou",
            "accuracy",
            "segroot_soft_dice",
            "length_true_px",
            "length_pred_px",
            "fp",
        ],
    )
    write_text(run_dir / "per_image.md", per_image_md)
    reports.write_csv(run_dir / "summary.csv", summary_rows(result))
    patches = [
        {"patch": size, "mIoU": v["iou"], "Dice": v["dice"], "mAP": v["ap"]} for size, v in result["patches"].items()
    ]
    text = (
        f"# Evaluation of {result['checkpoint']}\n\nData: {result['data']} ({result['split']} split)\n\n"
        "## Pixels (Smith et al. 2020 Tables 3-4; per-image over images with root)\n\n"
        + reports.markdown_table(summary_rows(result))
        + "\n## Patches (RootSAM Table 1; mean over patches)\n\n"
        + reports.markdown_table(patches)
    )
    if "length_agreement" in result:
        agreement = result["length_agreement"]
        text += (
            f"\n## Root length, predicted vs annotated\n\nSpearman {agreement['spearman']:.4f}, "
            f"r^2 {agreement['r2']:.4f} (n = {agreement['n']})\n"
        )
    if result["no_root_images"]:
        text += "\n## Images without root (false-positive pixels)\n\n" + reports.markdown_table(
            result["no_root_images"]
        )
    write_text(run_dir / "summary.md", text)
    reports.write_json(run_dir / "summary.json", result)


def _print(result: dict[str, Any], run_dir: Path) -> None:
    pooled = result["pooled"]
    print(
        f"\npooled: f1={pooled['f1']:.4f} precision={pooled['precision']:.4f} recall={pooled['recall']:.4f} "
        f"iou={pooled['iou']:.4f}  per-image mean f1={result['per_image']['mean']['f1']:.4f}"
    )
    print(f"tables and figures: {run_dir}")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> float:
    with cli.user_errors():
        result = evaluate(cfg)
    return float(result["pooled"]["f1"]) if not math.isnan(result["pooled"]["f1"]) else 0.0


if __name__ == "__main__":
    cli.run(main, "eval")
