"""Package a trained U-Net checkpoint as a shipped model (`rootseg/models/shipped/`), usable as `ckpt_path=NAME`.

Two steps, because the model card's scores must be measured on the file as shipped (its threshold included):

    python experiments/segroot/ship.py weights CKPT --eval EVAL_DIR   # EVAL_DIR: rootseg.eval of CKPT, split=val
    python experiments/segroot/ship.py card --eval EVAL_DIR2          # EVAL_DIR2: rootseg.eval of the shipped NAME

`weights` writes NAME.ckpt: the weights only (no optimizer, scheduler or loop state; frozen parts are already left
out by the module's own checkpoint hook), with the run config inside and `model.threshold` set to the threshold
with the best pooled F1 on EVAL_DIR's images (`best_threshold` of its summary.json: chosen on val), then its sha256
into manifest.json. `card` writes NAME.md from the second eval's summary.json and refuses an eval of another file
or at another threshold. experiments/segroot/ship.sh runs both evals and both steps.
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


def ship_weights(ckpt: Path, evaluation: dict[str, Any], name: str, summary: str) -> dict[str, Any]:
    checkpoint = read_checkpoint(ckpt)
    if checkpoint["rootseg"].get("kind") != "unet":
        raise SystemExit(f"{ckpt}: a {checkpoint['rootseg'].get('kind')!r} checkpoint; this script ships U-Nets")
    threshold = float(evaluation["best_threshold"]["threshold"])
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
        "resolution": RESOLUTION,
        "licence": LICENCE,
        "card": f"{name}.md",
        "summary": summary,
        "bytes": len(data),
    }
    write_manifest(models)
    print(f"{name}: {len(data) / 2**20:.2f} MB, threshold {threshold} (best pooled F1 on {evaluation['split']})")
    return models[name]


def write_manifest(models: dict[str, dict[str, Any]]) -> None:
    text = json.dumps({"models": models}, indent=1, sort_keys=False) + "\n"
    write_text(shipped.SHIPPED_DIR / shipped.MANIFEST_NAME, text)


def card_fields(name: str, entry: dict[str, Any], evaluation: dict[str, Any], recipe: str) -> dict[str, str]:
    pooled, length = evaluation["pooled"], evaluation.get("length_agreement") or {}
    meta = torch.load(shipped.SHIPPED_DIR / entry["file"], map_location="cpu", weights_only=False)["rootseg"]
    return {
        "name": name,
        "sha256": entry["sha256"],
        "size_mb": f"{entry['bytes'] / 2**20:.2f}",
        "threshold": f"{entry['threshold']:g}",
        "resolution": entry["resolution"],
        "licence": entry["licence"],
        "recipe": recipe,
        "source": json.dumps(meta.get("shipped_from")),
        "split": str(evaluation["split"]),
        "n_images": str(evaluation["n_images"]),
        "f1": f"{pooled['f1']:.4f}",
        "precision": f"{pooled['precision']:.4f}",
        "recall": f"{pooled['recall']:.4f}",
        "iou": f"{pooled['iou']:.4f}",
        "per_image_f1": f"{evaluation['per_image']['mean']['f1']:.4f}",
        "length_r2": f"{length['r2']:.4f}" if "r2" in length else "not measured",
        "length_spearman": f"{length['spearman']:.4f}" if "spearman" in length else "not measured",
        "inference": json.dumps(evaluation.get("inference", {}), sort_keys=True),
    }


def ship_card(evaluation: dict[str, Any], name: str, recipe: str) -> Path:
    entry = shipped.shipped_models()[name]
    if str(evaluation["checkpoint"]) not in (name, str(shipped.SHIPPED_DIR / entry["file"])):
        raise SystemExit(f"the eval scored {evaluation['checkpoint']}, not the shipped {name}: run ship.sh's card step")
    if abs(float(evaluation["threshold"]) - float(entry["threshold"])) > 1e-9:
        raise SystemExit(f"the eval ran at threshold {evaluation['threshold']}, the model ships {entry['threshold']}")
    fields = card_fields(name, entry, evaluation, recipe)
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
    parser.add_argument("--eval", type=Path, required=True, help="hydra.run.dir of a rootseg.eval run (split=val)")
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--summary", default="U-Net (unet_narrow, 0.49 M parameters) for soybean roots in CI-600 scans")
    parser.add_argument("--recipe", default="python -m rootseg.train +experiment=unet_segroot_cpu")
    args = parser.parse_args(argv)
    evaluation = load_eval(args.eval)
    if args.step == "weights":
        if args.ckpt is None:
            parser.error("weights needs CKPT")
        ship_weights(args.ckpt, evaluation, args.name, args.summary)
    else:
        ship_card(evaluation, args.name, args.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
