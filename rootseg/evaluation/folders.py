"""Any folder of masks against a reference folder, no model: `python -m rootseg.compare pred=DIR truth=DIR`.

RootPainter's, RhizoVision Explorer's, nnU-Net's or rootseg's masks against annotations: per image the pixel
counts and scores (`rootseg.metrics.pixels`, unlabelled reference pixels skipped) and the traits of both
(`rootseg.measure.traits`, with the `clean:` settings every command measures with, on the reference's labelled
pixels); pooled scores; and per trait the agreement over images (Spearman, r^2, slope, median relative error;
`rootseg.measure.agreement.trait_agreement`, the one `rootseg.eval` reports too). Files pair by name less the
extension; folders whose names differ are refused, naming the files without a partner. When predict's results.csv
with its trait error bars (`rootseg.measure.intervals`) is in the pred folder (or given as `intervals=`), the
coverage of those intervals by the reference's traits too; otherwise the summary says it is unavailable.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from rootseg.evaluation.summary import COVERAGE_KEYS, coverage_markdown
from rootseg.inference.jobs import find_images
from rootseg.io.atomic import write_text
from rootseg.io.masks import read_binary_mask
from rootseg.io.tables import markdown_table, read_csv, write_csv, write_json
from rootseg.measure.agreement import AGREEMENT_TRAITS, trait_agreement
from rootseg.measure.intervals import FLAG_COLUMN, interval_coverage
from rootseg.measure.traits import TraitSettings, pixel_traits, traits_from_pixels
from rootseg.metrics.pixels import confusion, scores, summarize_counts

log = logging.getLogger(__name__)
_SCORES = ("dice", "iou", "precision", "recall", "accuracy")
_AGREEMENT_COLUMNS = ("trait", "n", "spearman", "r2", "slope", "intercept", "median_relative_error")


def pair_masks(pred_dir: Path, truth_dir: Path) -> list[tuple[str, Path, Path]]:
    """(name, prediction, reference) for each file stem found in both folders; any unpaired file is an error."""
    found = {}
    for side, folder in (("pred", pred_dir), ("truth", truth_dir)):
        paths = find_images(str(folder))
        found[side] = {Path(p).stem: Path(p) for p in paths}
        if len(found[side]) != len(paths):
            raise ValueError(f"{side}={folder} holds two masks of one name (different extensions); keep one each")
    only_pred = sorted(set(found["pred"]) - set(found["truth"]))
    only_truth = sorted(set(found["truth"]) - set(found["pred"]))
    if only_pred or only_truth:
        raise ValueError(
            f"the mask names of pred={pred_dir} and truth={truth_dir} do not match: "
            f"{len(only_pred)} only in pred {only_pred[:5]}, {len(only_truth)} only in truth {only_truth[:5]}; "
            "give two folders with one mask per image under the same name"
        )
    return [(stem, found["pred"][stem], found["truth"][stem]) for stem in sorted(found["pred"])]


def compare_pair(pred_path: Path, truth_path: Path, mm: float | None, settings: TraitSettings, threshold: int) -> dict:
    """One per_image.csv row: pixel counts and scores, and the traits of both masks."""
    pred = read_binary_mask(pred_path, threshold) == 1
    target = read_binary_mask(truth_path, threshold)
    if pred.shape != target.shape:
        raise ValueError(f"{pred_path.name}: the prediction is {pred.shape}, the reference {target.shape} px")
    counts = confusion(pred, target)
    row: dict[str, Any] = {"name": pred_path.stem, **counts, **{k: scores(**counts)[k] for k in _SCORES}}
    labelled = target != 255
    for side, mask in (("true", target == 1), ("pred", pred & labelled)):
        measured = traits_from_pixels(pixel_traits(mask, valid=labelled, clean=settings.clean), mm, settings)
        row.update({f"{side}_{key}": value for key, value in measured.items()})
    return row


def attach_intervals(rows: list[dict[str, Any]], pred_dir: Path, table: Path | None) -> str:
    """Give compare's rows the prediction's error bars (`pred_<trait>_low`/`_high`, `pred_unreliable`) from
    predict's results.csv (`table`, else the pred folder's), matched by name less the extension (NaN for an
    image it lacks); returns why there are none ("" when there are)."""
    if table is not None and not table.is_file():
        raise ValueError(f"intervals={table}: no such file; give predict's results.csv or leave intervals unset")
    table = table or pred_dir / "results.csv"
    if not table.is_file():
        return f"Coverage unavailable: no predict results.csv in {pred_dir} (give one as intervals=PATH)."
    found = {Path(str(row["name"])).stem: row for row in read_csv(table)}
    keys = [f"{trait}{end}" for trait in AGREEMENT_TRAITS for end in ("_low", "_high")] + [FLAG_COLUMN]
    if not found or any(key not in next(iter(found.values())) for key in keys):
        return f"Coverage unavailable: {table} has no interval columns (predict with interval settings)."
    for row in rows:
        source = found.get(row["name"], {})
        row.update({f"pred_{key}": _number(source.get(key)) for key in keys})
    return ""


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _markdown(pooled: dict, mean: dict, agreement: list[dict], n: int) -> str:
    pixel = [{"pooling": "pooled", **{k: pooled[k] for k in _SCORES}}, {"pooling": "mean of images", **mean}]
    shown = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in agreement]
    return (
        f"# Masks against reference masks ({n} images)\n\n## Pixels\n\n"
        + markdown_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in pixel])
        + "\n\n## Traits (prediction vs reference, over images)\n\n"
        + markdown_table(shown, _AGREEMENT_COLUMNS)
        + "\n"
    )


def compare_folders(
    pred_dir: Path,
    truth_dir: Path,
    output: Path,
    mm: float | None,
    settings: TraitSettings,
    threshold: int = 127,
    intervals: Path | None = None,
) -> dict[str, Any]:
    """Write per_image.csv, summary.json/.csv/.md and traits_agreement.png under `output`; returns the summary.
    `intervals`: predict's results.csv with the trait error bars (default: the pred folder's, if any)."""
    from rootseg.figures.plots import trait_scatter

    pairs = pair_masks(pred_dir, truth_dir)
    if not pairs:
        raise ValueError(f"no masks found in pred={pred_dir} and truth={truth_dir}")
    rows = [compare_pair(pred, truth, mm, settings, threshold) for _, pred, truth in pairs]
    pooled, _, summary = summarize_counts(rows)
    mean = {k: summary["mean"][k] for k in _SCORES if k in summary["mean"]}
    agreement = trait_agreement(rows, AGREEMENT_TRAITS)
    missing = attach_intervals(rows, pred_dir, intervals)
    coverage = None if missing else interval_coverage(rows, AGREEMENT_TRAITS)
    result = {
        "pred": str(pred_dir),
        "truth": str(truth_dir),
        "n_images": len(rows),
        "pooled": {k: pooled[k] for k in ("tp", "fp", "fn", "tn", *_SCORES)},
        "mean_of_images": mean,
        "trait_agreement": agreement,
        "interval_coverage": coverage,
        **({"interval_coverage_missing": missing} if missing else {}),
    }
    output.mkdir(parents=True, exist_ok=True)
    write_csv(output / "per_image.csv", rows)
    write_json(output / "summary.json", result)
    by_trait = {entry["trait"]: entry for entry in coverage or []}
    table = [{**row, **by_trait.get(row["trait"], {})} for row in agreement]
    write_csv(output / "summary.csv", table, [*_AGREEMENT_COLUMNS, *(COVERAGE_KEYS if coverage else ())])
    text = _markdown(result["pooled"], mean, agreement, len(rows)) + coverage_markdown(coverage, missing)
    write_text(output / "summary.md", text)
    trait_scatter(rows, AGREEMENT_TRAITS, output / "traits_agreement.png")
    dice = result["pooled"]["dice"]
    log.info("%d images; pooled Dice %s", len(rows), "n/a" if math.isnan(dice) else f"{dice:.4f}")
    return result
