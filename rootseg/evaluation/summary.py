"""An evaluation's summary in every form a user reads: summary.md, summary.csv (one number per row), summary.json,
per_image.csv/.md, and the two lines printed at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rootseg.io.atomic import write_text
from rootseg.io.tables import markdown_table, write_csv, write_json


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The pixel scores as table rows: one per statistic (summary.md)."""
    keys = ("precision", "recall", "f1", "iou", "accuracy")
    rows = [{"statistic": "pooled over all pixels", **{k: result["pooled"][k] for k in keys}}]
    rows.append({"statistic": "per-image mean", **{k: result["per_image"]["mean"][k] for k in keys}})
    rows.append({"statistic": "per-image sd", **{k: result["per_image"]["sd"][k] for k in keys}})
    return rows


AGREEMENT_KEYS = ("spearman", "spearman_p", "r2", "slope", "intercept")


def summary_csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every summary number as one row (group, statistic, metric, value, n): summary.csv.

    n is the number of images (pooled, soft Dice, agreement), of images with root (per-image mean and sd),
    or of patches that went into a per-patch mean."""
    n_images = result["n_images"]
    rows: list[dict[str, Any]] = []

    def add(group: str, statistic: str, metric: str, value: Any, n: Any) -> None:
        rows.append({"group": group, "statistic": statistic, "metric": metric, "value": value, "n": n})

    for metric in ("precision", "recall", "f1", "iou", "accuracy"):
        add("pixels", "pooled over all pixels", metric, result["pooled"][metric], n_images)
    for statistic in ("mean", "sd"):
        for metric in ("precision", "recall", "f1", "iou", "accuracy"):
            add(
                "pixels",
                f"per-image {statistic}",
                metric,
                result["per_image"][statistic][metric],
                result["per_image"]["n"],
            )
    add("pixels", "per-image mean", "segroot_soft_dice", result["segroot_soft_dice_mean"], n_images)
    best = result.get("best_threshold")
    if best:
        for metric in ("threshold", "f1", "precision", "recall"):
            add("pixels", "best threshold on these images", metric, best[metric], n_images)
    for size, values in result["patches"].items():
        group = f"patches {size}"
        add(group, "per-patch mean", "iou", values["iou"], values["n_scored"])
        add(group, "per-patch mean", "dice", values["dice"], values["n_scored"])
        add(group, "per-patch mean", "ap", values["ap"], values["n_ap"])
        for metric in ("iou", "dice", "ap"):
            add(group, "pooled over all pixels", metric, values[f"{metric}_pooled"], n_images)
    stage = result.get("stage_patches")
    if stage:
        statistic = f"per-patch mean ({stage['stage']} grid, resized to {stage['resize']})"
        for metric, n in (("iou", "n_scored"), ("dice", "n_scored"), ("ap", "n_ap")):
            add(f"stage patches {stage['patch']}", statistic, metric, stage[metric], stage[n])
    for key in agreement_keys(result):
        if key in result:
            group, grid = agreement_label(key, result[key])
            statistic = "predicted vs annotated" + (f" ({grid} grid)" if grid else "")
            for metric in AGREEMENT_KEYS:
                add(group, statistic, metric, result[key][metric], result[key]["n"])
    for entry in result.get("interval_coverage") or []:
        for metric in COVERAGE_KEYS:
            add("trait interval", entry["trait"], metric, entry[metric], entry["n"])
    return rows


COVERAGE_KEYS = ("coverage", "flagged", "flagged_error_share")


def coverage_markdown(coverage: list[dict[str, Any]] | None, missing: str = "") -> str:
    """The coverage of the prediction's trait error bars (`rootseg.measure.intervals.interval_coverage`) as a
    Markdown section; `missing` says why there is none (empty: no section)."""
    if not coverage:
        return f"\n## Trait intervals\n\n{missing}\n" if missing else ""
    shown = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in coverage]
    return (
        "\n## Trait intervals (threshold -/+ delta, widened by the margin), prediction vs reference\n\n"
        "coverage: share of images whose reference trait lies in [low, high]; flagged: share of images flagged "
        "`unreliable`; flagged_error_share: share of the total relative error |prediction - reference| / reference "
        "the flagged images hold."
        "\n\n" + markdown_table(shown, ["trait", "n", *COVERAGE_KEYS]) + "\n"
    )


def agreement_keys(result: dict[str, Any]) -> list[str]:
    """length_agreement, then intensity_agreement (the headline grid) and intensity_agreement_<g>mm, or
    intersections_agreement (a pixel grid, without a resolution)."""
    grids = ("intensity_agreement", "intersections_agreement")
    return ["length_agreement"] + [key for key in result if key.startswith(grids)]


def agreement_label(key: str, agreement: dict[str, Any]) -> tuple[str, str]:
    """(what is compared, its grid spacing such as "10 mm"; "" for length) for summary.csv and summary.md."""
    if key == "length_agreement":
        return "root length", ""
    if key == "intersections_agreement":
        return "root intersections", f"{agreement['grid_px']:g} px"
    return "root intensity", f"{agreement['grid_mm']:g} mm"


def settings_line(inference: dict[str, Any] | None) -> str:
    """The inference settings that scored, as one Markdown line: a rerun with them gives the same masks."""
    if not inference:
        return ""
    shown = ", ".join(f"{key} {value}" for key, value in inference.items() if key != "kind")
    return f"Scored with `rootseg.inference.Predictor` ({inference.get('kind')}): {shown}\n\n"


def stage_markdown(stage: dict[str, Any] | None) -> str:
    """The patch metrics on a stage's resized grid (RootSAM Table 1's protocol), when eval had a stage."""
    if not stage:
        return ""
    row = {
        "stage": stage["stage"],
        "grid": f"{stage['resize']} px, {stage['patch']} px patches",
        "mIoU": stage["iou"],
        "Dice": stage["dice"],
        "mAP": stage["ap"],
        "patches": stage["n_patches"],
        "scored": stage["n_scored"],
        "with root": stage["n_ap"],
    }
    return (
        f"\n## Patches on the {stage['stage']} grid (RootSAM Table 1's protocol, {stage['source']})\n\n"
        "Each scan (prediction and annotation) resized to the stage's square and cut into its tiles, as the paper "
        "scores; the patch table above is on the original images.\n\n" + markdown_table([row])
    )


def best_threshold_line(best: dict[str, float] | None, threshold: float) -> str:
    """The threshold these images would have liked best: on validation images, the one to predict with."""
    if not best or best["f1"] == 0:
        return ""
    return (
        f"\nBest threshold on these images: {best['threshold']:g} (pooled F1 {best['f1']:.4f}, precision "
        f"{best['precision']:.4f}, recall {best['recall']:.4f}; scored above at {threshold:g}). Chosen on "
        f"validation images, pass it as `threshold={best['threshold']:g}` to eval and predict of new images; "
        "chosen on test images it flatters the model.\n"
    )


def write_summary(run_dir: Path, rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    write_csv(run_dir / "per_image.csv", rows)
    columns = ["name", "precision", "recall", "f1", "iou", "accuracy", "segroot_soft_dice"]
    columns += ["length_true_px", "length_pred_px"]
    if result["mm_per_pixel"]:
        columns += ["intensity_true_per_m", "intensity_pred_per_m"]
    columns += ["fp"]
    write_text(run_dir / "per_image.md", markdown_table(rows, columns))
    write_csv(run_dir / "summary.csv", summary_csv_rows(result))
    patches = [
        {
            "patch": size,
            "mIoU": v["iou"],
            "Dice": v["dice"],
            "mAP": v["ap"],
            "patches": v["n_patches"],
            "scored": v["n_scored"],
            "with root": v["n_ap"],
            "IoU pooled": v["iou_pooled"],
            "Dice pooled": v["dice_pooled"],
            "AP pooled": v["ap_pooled"],
        }
        for size, v in result["patches"].items()
    ]
    text = (
        f"# Evaluation of {result['checkpoint']}\n\nData: {result['data']} ({result['split']} split, "
        f"{result['n_images']} images; {result['split_reason']}), threshold {result['threshold']:g}\n\n"
        + settings_line(result.get("inference"))
        + "## Pixels (Smith et al. 2020 Tables 3-4; per-image over images with root)\n\n"
        + markdown_table(summary_rows(result))
        + f"\nSegRoot soft Dice (smoothing 1), mean over images: {result['segroot_soft_dice_mean']:.4f}\n"
        + best_threshold_line(result.get("best_threshold"), result["threshold"])
        + "\n## Patches (RootSAM Table 1)\n\n"
        "mIoU and Dice: mean over patches with root in the annotation or the prediction (`scored`); mAP: mean "
        "over patches with root in the annotation (`with root`). Pooled: all test pixels at once (the same "
        "for every patch size).\n\n" + markdown_table(patches) + stage_markdown(result.get("stage_patches"))
    )
    for key in agreement_keys(result):
        if key in result:
            agreement = result[key]
            title, grid = agreement_label(key, agreement)
            grid = f" ({grid} line-intersect grid)" if grid else ""
            text += (
                f"\n## {title.capitalize()}{grid}, predicted vs annotated\n\nSpearman {agreement['spearman']:.4f}, "
                f"r^2 {agreement['r2']:.4f} (n = {agreement['n']})\n"
            )
    text += coverage_markdown(result.get("interval_coverage"))
    if result["no_root_images"]:
        text += "\n## Images without root (false-positive pixels)\n\n" + markdown_table(result["no_root_images"])
    write_text(run_dir / "summary.md", text)
    write_json(run_dir / "summary.json", result)


def print_summary(result: dict[str, Any], run_dir: Path) -> None:
    pooled = result["pooled"]
    print(
        f"\npooled: f1={pooled['f1']:.4f} precision={pooled['precision']:.4f} recall={pooled['recall']:.4f} "
        f"iou={pooled['iou']:.4f}  per-image mean f1={result['per_image']['mean']['f1']:.4f}"
    )
    print(f"tables and figures: {run_dir}")
