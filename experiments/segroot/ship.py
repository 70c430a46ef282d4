"""Package a trained U-Net checkpoint as a shipped model (`rootseg/models/shipped/`), usable as `ckpt_path=NAME`.

Two steps, because the model card's scores must be measured on the file as shipped (its threshold included):

    python experiments/segroot/ship.py weights CKPT --eval EVAL_DIR   # EVAL_DIR: rootseg.eval of CKPT, split=val
    python experiments/segroot/ship.py card --eval EVAL_DIR2          # EVAL_DIR2: rootseg.eval of the shipped NAME

`weights` writes NAME.ckpt: the weights only (no optimizer, scheduler or loop state; frozen parts are already left
out by the module's own checkpoint hook), with the run config inside and `model.threshold` set to the threshold
with the best pooled F1 on EVAL_DIR's images (`best_threshold` of its summary.json: chosen on val; `--threshold T`
ships T instead, and without `--eval` the checkpoint's own), then its sha256 into manifest.json. `card` writes
NAME.md from the second eval's summary.json (of NAME, or of the checkpoint it came from: the weights are compared)
and refuses other weights or another threshold; without `--eval` every score reads "not measured".
experiments/segroot/ship.sh runs both evals and both steps.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import torch

from rootseg.io.atomic import write_bytes, write_text
from rootseg.models import shipped
from rootseg.tasks.checkpoints import read_checkpoint

MAX_BYTES = 20 * 2**20
CARD = Path(__file__).with_name("model_card.md")  # the template; {fields} filled from the eval
NAME = "segroot-ci600"
RESOLUTION = "CI-600 minirhizotron scans at 300 dpi (0.0847 mm per pixel; 2550 x 2273 px RGB)"
LICENCE = (
    "Trained on SegRoot's images, whose repository states no licence (all rights reserved by default): "
    "check the terms with the SegRoot authors before using the weights commercially or redistributing them"
)


def load_eval(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; give the hydra.run.dir of a rootseg.eval run")
    return json.loads(path.read_text(encoding="utf-8"))


def weights_only(checkpoint: dict[str, Any], threshold: float, source: Path) -> dict[str, Any]:
    """The parts `rootseg.tasks.checkpoints.load_module` reads, with the chosen threshold in the run config."""
    meta = dict(checkpoint["rootseg"])
    config = json.loads(json.dumps(meta["config"]))  # a deep copy of plain containers
    config["model"].update({"threshold": float(threshold), "init_ckpt": None, "compile": False})
    meta["config"] = config
    meta["shipped_from"] = {
        "checkpoint": source.name,
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
    }
    state = {key: value.detach().clone().contiguous() for key, value in checkpoint["state_dict"].items()}
    return {"state_dict": state, "rootseg": meta}


def choose_threshold(
    checkpoint: dict[str, Any], evaluation: dict[str, Any] | None, given: float | None
) -> tuple[float, str]:
    """(threshold, where it comes from): `--threshold` if given, else the eval's best pooled-F1 threshold (chosen
    on val), else the checkpoint's own."""
    if given is not None:
        return float(given), "given to ship.py (--threshold), not chosen on val"
    if evaluation is not None:
        best = evaluation["best_threshold"]
        return float(best["threshold"]), (
            f"the threshold with the highest pooled F1 on the {evaluation['n_images']} {evaluation['split']} scans "
            f"({best['f1']:.4f} there, from the eval of the training checkpoint)"
        )
    return float(
        checkpoint["rootseg"]["config"]["model"].get("threshold", 0.5)
    ), "the training default, not chosen on val"


def ship_weights(
    ckpt: Path, evaluation: dict[str, Any] | None, name: str, summary: str, threshold: float | None = None
) -> dict[str, Any]:
    checkpoint = read_checkpoint(ckpt)
    if checkpoint["rootseg"].get("kind") != "unet":
        raise SystemExit(f"{ckpt}: a {checkpoint['rootseg'].get('kind')!r} checkpoint; this script ships U-Nets")
    threshold, threshold_source = choose_threshold(checkpoint, evaluation, threshold)
    buffer = io.BytesIO()
    torch.save(weights_only(checkpoint, threshold, ckpt), buffer)
    data = buffer.getvalue()
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{ckpt}: the weights take {len(data) / 2**20:.1f} MB, over the 20 MB a shipped model may")
    write_bytes(shipped.SHIPPED_DIR / f"{name}.ckpt", data)
    models = shipped.shipped_models()
    models[name] = {
        "file": f"{name}.ckpt",
        "sha256": hashlib.sha256(data).hexdigest(),
        "threshold": threshold,
        "threshold_source": threshold_source,
        "resolution": RESOLUTION,
        "licence": LICENCE,
        "card": f"{name}.md",
        "summary": summary,
        "bytes": len(data),
    }
    write_manifest(models)
    print(f"{name}: {len(data) / 2**20:.2f} MB, threshold {threshold}, sha256 {models[name]['sha256']}")
    return models[name]


def write_manifest(models: dict[str, dict[str, Any]]) -> None:
    text = json.dumps({"models": models}, indent=1, sort_keys=False) + "\n"
    write_text(shipped.SHIPPED_DIR / shipped.MANIFEST_NAME, text)


NOT_MEASURED = "not measured"
SCORES = ("f1", "precision", "recall", "iou", "per_image_f1", "length_r2", "length_spearman")


def scores(evaluation: dict[str, Any] | None) -> dict[str, str]:
    """The card's score fields from an eval's summary.json; "not measured" for each without one."""
    if evaluation is None:
        return {key: NOT_MEASURED for key in SCORES} | {"split": "val", "n_images": "13", "inference": NOT_MEASURED}
    pooled, length = evaluation["pooled"], evaluation.get("length_agreement") or {}
    return {
        "split": str(evaluation["split"]),
        "n_images": str(evaluation["n_images"]),
        "f1": f"{pooled['f1']:.4f}",
        "precision": f"{pooled['precision']:.4f}",
        "recall": f"{pooled['recall']:.4f}",
        "iou": f"{pooled['iou']:.4f}",
        "per_image_f1": f"{evaluation['per_image']['mean']['f1']:.4f}",
        "length_r2": f"{length['r2']:.4f}" if "r2" in length else NOT_MEASURED,
        "length_spearman": f"{length['spearman']:.4f}" if "spearman" in length else NOT_MEASURED,
        "inference": json.dumps(evaluation.get("inference", {}), sort_keys=True),
    }


def check_scored(evaluation: dict[str, Any], name: str, entry: dict[str, Any], weights: dict[str, Any]) -> None:
    """The eval must have scored these very weights (by name, or the checkpoint they came from) at this threshold."""
    scored = str(evaluation["checkpoint"])
    if scored != name:
        other = read_checkpoint(scored)["state_dict"]
        if other.keys() != weights.keys() or not all(torch.equal(other[k], v) for k, v in weights.items()):
            raise SystemExit(f"the eval scored {scored}, whose weights are not the shipped {name}'s")
    if abs(float(evaluation["threshold"]) - float(entry["threshold"])) > 1e-9:
        raise SystemExit(f"the eval ran at threshold {evaluation['threshold']}, the model ships {entry['threshold']}")


def source_line(meta: dict[str, Any]) -> str:
    """Which training checkpoint, after how much training, in which precision."""
    origin = meta.get("shipped_from") or {}
    precision = ((meta.get("config") or {}).get("trainer") or {}).get("precision")
    epochs = "?" if origin.get("epoch") is None else origin["epoch"] + 1
    return (
        f"`{origin.get('checkpoint')}`, written after {epochs} training epochs ({origin.get('global_step')} "
        f"optimizer steps), trainer precision {precision}"
    )


def ship_card(evaluation: dict[str, Any] | None, name: str, recipe: str, status: str) -> Path:
    entry = shipped.shipped_models()[name]
    shipped_weights = torch.load(shipped.SHIPPED_DIR / entry["file"], map_location="cpu", weights_only=False)
    if evaluation is not None:
        check_scored(evaluation, name, entry, shipped_weights["state_dict"])
    fields = {
        "name": name,
        "sha256": entry["sha256"],
        "size_mb": f"{entry['bytes'] / 2**20:.2f}",
        "threshold": f"{entry['threshold']:g}",
        "resolution": entry["resolution"],
        "licence": entry["licence"],
        "recipe": recipe,
        "source": source_line(shipped_weights["rootseg"]),
        "threshold_source": entry.get("threshold_source", ""),
        "status": status,
        **scores(evaluation),
    }
    path = shipped.SHIPPED_DIR / entry["card"]
    write_text(path, CARD.read_text(encoding="utf-8").format(**fields))
    print(
        f"{path}: pooled F1 {fields['f1']}, length r2 {fields['length_r2']} on {fields['n_images']} {fields['split']}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("weights", "card"))
    parser.add_argument("ckpt", nargs="?", type=Path, help="weights: the training checkpoint to ship")
    parser.add_argument("--eval", type=Path, help="hydra.run.dir of a rootseg.eval run, split=val (none: unscored)")
    parser.add_argument("--threshold", type=float, help="weights: ship this threshold (default: the eval's best)")
    parser.add_argument("--status", default="", help="card: a line on where the model stands (an unfinished run)")
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--summary", default="U-Net (unet_narrow, 0.49 M parameters) for soybean roots in CI-600 scans")
    parser.add_argument("--recipe", default="python -m rootseg.train +experiment=unet_segroot_cpu")
    args = parser.parse_args(argv)
    evaluation = load_eval(args.eval) if args.eval else None
    if args.step == "weights":
        if args.ckpt is None:
            parser.error("weights needs CKPT")
        ship_weights(args.ckpt, evaluation, args.name, args.summary, args.threshold)
    else:
        ship_card(evaluation, args.name, args.recipe, args.status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
