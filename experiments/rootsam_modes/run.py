"""The rootsam_modes study: one RootSAM checkpoint (trained with prompt_mode=mixed) scored on held-out images
five ways, with F1, precision, recall and seconds per image (JSON and results.md).

- prompted: the paper's protocol, the checkpoint's test tiles prompted from the ground truth (one
  distance-transform click per root object; root that got no click counts nowhere), as the `test/` metrics
  of `rootseg.train` compute them (`RootSAMModule._step` on the test loader);
- promptless, grid unfiltered, grid filtered, U-Net clicks: `rootseg.eval` on the same test images, whole
  scans, with `prompt_free=promptless`, `prompt_free=grid min_predicted_iou=0 min_stability=0`,
  `prompt_free=grid` (the checkpoint's thresholds: 0.88 / 0.95 for the study's) and `prompt_ckpt=<U-Net>`;
  pixels pooled over the images.

    python experiments/rootsam_modes/run.py --ckpt /work/ckpts/rootsam_small/rootsam_small.ckpt \
        --unet /work/ckpts/unet_demo/run/checkpoints/last.ckpt --out /work/ckpts/rootsam_modes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import hydra  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from rootseg.config.run_config import compose_task  # noqa: E402
from rootseg.evaluation.run import evaluate  # noqa: E402
from rootseg.io.arrays import IGNORE_INDEX  # noqa: E402
from rootseg.io.tables import read_csv  # noqa: E402
from rootseg.metrics.pixels import scores  # noqa: E402
from rootseg.tasks.checkpoints import load_module  # noqa: E402

#: mode -> eval overrides (beyond ckpt_path); {unet} is the U-Net checkpoint, {grid} the grid's clicks per side
EVAL_MODES = {
    "promptless": ["prompt_free=promptless"],
    "grid unfiltered": ["prompt_free=grid", "min_predicted_iou=0", "min_stability=0", "grid_points_per_side={grid}"],
    "grid filtered": ["prompt_free=grid", "grid_points_per_side={grid}"],
    "U-Net clicks": ["prompt_ckpt={unet}"],
}


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def prompted(ckpt: Path, split: str = "test", threshold: float | None = None) -> dict[str, Any]:
    """The paper's protocol on the checkpoint's tiles of `split`: pooled precision, recall, F1 (at `threshold`,
    default the checkpoint's) and seconds per image, and F1 at every threshold of THRESHOLDS (to choose one on
    the validation split)."""
    module = load_module(ckpt).eval()
    module.prompt_mode = "points"  # time the prompted pass alone (a mixed checkpoint would also run promptless)
    data = OmegaConf.create(module.run_config["data"])
    data.prompt_mode = "points"  # the paper's tiles: those holding a root object
    datamodule = hydra.utils.instantiate(data)
    datamodule.setup("test" if split == "test" else "validate")
    loader = torch.utils.data.DataLoader(datamodule.eval_dataset(split), batch_size=datamodule.eval_batch_size)
    threshold = module.threshold if threshold is None else threshold
    counts = {t: {"tp": 0, "fp": 0, "fn": 0, "tn": 0} for t in (threshold, *THRESHOLDS)}
    seconds = 0.0  # the model's time (encoder and prompted decoder), not the scoring's
    with torch.inference_mode():
        for batch in loader:
            start = time.perf_counter()
            out = module._step(batch, split)
            seconds += time.perf_counter() - start
            if out is None or out[0] is None:
                continue
            probs, target = out[0].probs, out[0].target
            labelled, truth = target != IGNORE_INDEX, target == 1
            for t, tally in counts.items():
                pred = probs >= t
                tally["tp"] += int((pred & truth).sum())
                tally["fp"] += int((pred & labelled & ~truth).sum())
                tally["fn"] += int((~pred & truth).sum())
                tally["tn"] += int((~pred & labelled & ~truth).sum())
    n_images = len(datamodule.source.split(split))
    return {
        **scores(**counts[threshold]),
        "threshold": threshold,
        "split": split,
        "seconds_per_image": seconds / n_images,
        "images": n_images,
        "tiles": len(loader.dataset),
        "f1_by_threshold": {t: scores(**counts[t])["f1"] for t in THRESHOLDS},
    }


def eval_mode(
    mode: str,
    ckpt: Path,
    unet: Path,
    out: Path,
    data_root: Path | None = None,
    grid: int = 16,
    grid_filter: tuple[float | None, float | None] = (None, None),
    threshold: float | None = None,
) -> dict[str, Any]:
    """One prompt-free mode through `rootseg.eval`: pooled scores and mean seconds per image (on the checkpoint's
    test split, or every image of `data_root`, a folder of images/ and masks/). `grid_filter`: the filtered
    grid's (min_predicted_iou, min_stability), None for the checkpoint's; `threshold` None: the checkpoint's."""
    run_dir = out / mode.replace(" ", "_").replace("-", "").lower()
    overrides = [f"ckpt_path={ckpt}", "figures=2", *(o.format(unet=unet, grid=grid) for o in EVAL_MODES[mode])]
    if threshold is not None:
        overrides.append(f"threshold={threshold}")
    if mode == "grid filtered":
        names = ("min_predicted_iou", "min_stability")
        overrides += [f"{name}={value}" for name, value in zip(names, grid_filter) if value is not None]
    if data_root is not None:
        overrides += ["data=folder", f"data.root={data_root}"]
    summary = evaluate(compose_task("eval", overrides, run_dir))
    rows = read_csv(run_dir / "per_image.csv")  # each image's prediction time, `seconds`
    pooled = summary["pooled"]
    return {
        "precision": pooled["precision"],
        "recall": pooled["recall"],
        "f1": pooled["f1"],
        "seconds_per_image": sum(float(r["seconds"]) for r in rows) / len(rows),
        "images": len(rows),
        "command": "python -m rootseg.eval " + " ".join(overrides) + f" hydra.run.dir={run_dir}",
        "inference": summary["inference"],
    }


def report(out: Path) -> str:
    """results.md from the results_<mode>.json files of the runs made so far."""
    lines = ["| mode | F1 | precision | recall | s per 1024 px image |", "|---|---|---|---|---|"]
    for mode in ("prompted", *EVAL_MODES):
        path = out / f"results_{_slug(mode)}.json"
        if path.is_file():
            r = json.loads(path.read_text())
            numbers = " | ".join(f"{r[key]:.3f}" for key in ("f1", "precision", "recall"))
            lines.append(f"| {mode} | {numbers} | {r['seconds_per_image']:.2f} |")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    return text


def _slug(mode: str) -> str:
    return mode.replace(" ", "_").replace("-", "").lower()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a RootSAM checkpoint trained with prompt_mode=mixed")
    parser.add_argument("--unet", type=Path, default=None, help="a U-Net checkpoint proposing clicks (U-Net clicks)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the eval runs and results")
    parser.add_argument(
        "--modes", nargs="*", default=["prompted", *EVAL_MODES], help="the modes to run (also prompted_val)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--data-root", type=Path, default=None, help="whole-scan modes on every image of this folder (images/, masks/)"
    )
    parser.add_argument("--grid", type=int, default=16, help="clicks per tile side of the grid modes")
    parser.add_argument("--threshold", type=float, default=None, help="probability threshold (default: ckpt's)")
    parser.add_argument("--min-predicted-iou", type=float, default=None, help="the filtered grid's (default: ckpt's)")
    parser.add_argument("--min-stability", type=float, default=None, help="the filtered grid's (default: ckpt's)")
    args = parser.parse_args(argv)
    if "U-Net clicks" in args.modes and args.unet is None:
        parser.error("the U-Net clicks mode needs --unet CKPT")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for mode in args.modes:
        if mode in ("prompted", "prompted_val"):  # prompted_val: F1 by threshold on the validation tiles
            result = prompted(args.ckpt, "val" if mode == "prompted_val" else "test", args.threshold)
        else:
            grid_filter = (args.min_predicted_iou, args.min_stability)
            result = eval_mode(
                mode, args.ckpt, args.unet, args.out, args.data_root, args.grid, grid_filter, args.threshold
            )
        result |= {"checkpoint": str(args.ckpt), "threads": args.threads}
        (args.out / f"results_{_slug(mode)}.json").write_text(json.dumps(result, indent=2, default=str))
        print(mode, {k: result[k] for k in ("f1", "precision", "recall", "seconds_per_image")}, flush=True)
    print(report(args.out))


if __name__ == "__main__":
    main(sys.argv[1:])
