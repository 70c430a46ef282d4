"""Every figure of one experiments/gpu/run.sh run: OUT/summary.json and OUT/summary.md (RESULTS.md tables).

Reads the run's working folder: steps.jsonl (each step's outcome), logs/<benchmark>.out (the benchmarks'
JSON), train/ (metrics.csv, the resolved config, the epoch lines of logs/train.out), eval_t0.5/ and
eval_t0.9/ (summary.json), gpu_samples.csv (nvidia-smi utilisation, GPU runs only), machine.json.

`figures` in summary.json holds every figure the study reports, by a fixed key list (`figure_keys`): a
number, or null with the reason in `missing`. Figures only a GPU gives (`gpu_only`) are null in a smoke run.
The exit status is 1 when a step failed or a figure other than those is missing (after writing both files).

    python experiments/gpu/summarize.py WORK OUT --mode gpu|smoke [--bundle .gpu-bundle] [--budget 480]

Standard library only (and PyYAML when present): it must run wherever run.sh runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

BATCH_SIZES = {"gpu": (8, 32), "smoke": (1, 2)}  # run.sh's train_step --batch-sizes
MODES = ("fp32", "bf16", "channels_last", "bf16_channels_last", "compile")
SCHEMES = ("grid", "blended", "blended_tta")
THRESHOLDS = ("0.5", "0.9")
BENCHMARKS = ("train_step", "dataloader", "predict", "rootsam_cache")


def figure_keys(mode: str) -> list[str]:
    """Every figure a run of this mode reports, in report order."""
    keys = []
    for batch in BATCH_SIZES[mode]:
        for m in MODES:
            keys += [f"train_step.b{batch}.{m}.{f}" for f in ("tiles_per_s", "peak_mem_mib", "gpu_busy_share")]
        keys.append(f"train_step.b{batch}.compile.compile_s")
    keys += [
        "dataloader.per_worker_tiles_per_s",
        "dataloader.all_workers_tiles_per_s",
        "dataloader.end_to_end.busy_share",
        "dataloader.end_to_end.tiles_per_s",
    ]
    for scheme in SCHEMES:
        keys += [f"predict.{scheme}.mp_per_s", f"predict.{scheme}.seconds"]
    keys += [
        "rootsam_cache.no_cache_epoch_s",
        "rootsam_cache.cache_cold_epoch_s",
        "rootsam_cache.cache_warm_epoch_s",
        "rootsam_cache.speedup_warm",
        "train.epochs",
        "train.steps",
        "train.best_val_f1",
        "train.epoch_s_median",
        "train.tiles_per_s",
        "train.gpu_util_mean",
    ]
    for t in THRESHOLDS:
        keys += [
            f"eval.t{t}.pooled_dice",
            f"eval.t{t}.precision",
            f"eval.t{t}.recall",
            f"eval.t{t}.per_image_f1_mean",
            f"eval.t{t}.length_spearman",
            f"eval.t{t}.length_r2",
        ]
    return keys


def gpu_only(key: str) -> bool:
    """Figures a CPU cannot give: kernel-time shares and nvidia-smi utilisation."""
    return key.endswith(".gpu_busy_share") or key == "train.gpu_util_mean"


def step_of(key: str) -> str:
    """The run.sh step a figure comes from: eval.t0.5.pooled_dice -> eval_t0.5, predict.grid.mp_per_s -> predict."""
    if key.startswith("eval.t"):
        return "eval_t" + key[len("eval.t") :].rsplit(".", 1)[0]
    return key.split(".")[0]


def json_objects(path: Path) -> list[dict[str, Any]]:
    """The JSON objects a benchmark printed, one after another (other lines skipped)."""
    if not path.is_file():
        return []
    text, decoder, objects, index = path.read_text(errors="replace"), json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) >= 0:
        try:
            obj, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index += 1
            continue
        if isinstance(obj, dict):
            objects.append(obj)
    return objects


def last_with(objects: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next((o for o in reversed(objects) if key in o), {})


def number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def dig(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def read_steps(work: Path) -> dict[str, dict[str, Any]]:
    steps = {}
    path = work / "steps.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        steps[row["step"]] = row
    return steps


def gpu_samples(work: Path) -> list[tuple[float, float]]:
    """(unix time, utilisation %) from nvidia-smi's CSV (timestamp '2026/11/30 10:22:33.123', local time)."""
    path = work / "gpu_samples.csv"
    samples = []
    for row in csv.reader(path.read_text(errors="replace").splitlines()) if path.is_file() else []:
        try:
            stamp = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((stamp, float(row[1])))
        except (ValueError, IndexError):
            continue
    return samples


def mean_util(samples: list[tuple[float, float]], step: dict[str, Any] | None) -> float | None:
    if not step or number(step.get("start")) is None or number(step.get("end")) is None:
        return None
    inside = [u for t, u in samples if step["start"] <= t <= step["end"]]
    return round(statistics.fmean(inside) / 100, 3) if inside else None


def train_figures(work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    metrics = work / "train" / "csv" / "metrics.csv"
    if metrics.is_file():
        rows = list(csv.DictReader(metrics.read_text().splitlines()))
        f1 = [float(r["val/f1"]) for r in rows if r.get("val/f1")]
        steps = [int(r["step"]) for r in rows if r.get("step")]
        epochs = [int(r["epoch"]) for r in rows if r.get("epoch") and r.get("train/loss_epoch")]
        out["train.best_val_f1"] = round(max(f1), 4) if f1 else None
        out["train.last_val_f1"] = round(f1[-1], 4) if f1 else None
        out["train.epochs"] = max(epochs) + 1 if epochs else None
        out["train.steps"] = max(steps) + 1 if steps else None
    # EpochSummary's lines: "epoch 3/120  train/loss_epoch=...  val/f1=...  (12 s)" (training + validation)
    log = work / "logs" / "train.out"
    seconds = [float(s) for s in re.findall(r"^epoch \d+/\d+ .*\((\d+(?:\.\d+)?) s\)\s*$", _text(log), re.M)]
    out["train.epoch_s_median"] = statistics.median(seconds) if seconds else None
    batch = _batch_size(work / "train" / "config_resolved.yaml")
    if seconds and out.get("train.steps") and batch:
        out["train.tiles_per_s"] = round(out["train.steps"] * batch / sum(seconds), 2)
    return out


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _batch_size(config: Path) -> int | None:
    text = _text(config)
    try:
        import yaml

        return int(yaml.safe_load(text)["data"]["batch_size"])
    except ImportError:
        found = re.search(r"^data:\n(?:[ ].*\n)*?  batch_size: (\d+)", text, re.M)
        return int(found.group(1)) if found else None
    except (TypeError, KeyError, ValueError, AttributeError, yaml.YAMLError):
        return None


def collect(work: Path, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures by key, context: machine, per-benchmark extras for the tables)."""
    figures: dict[str, Any] = {}
    context: dict[str, Any] = {}
    bench = {name: json_objects(work / "logs" / f"{name}.out") for name in BENCHMARKS}

    train_step = last_with(bench["train_step"], "batch_sizes")
    context["train_step"] = train_step
    for batch in BATCH_SIZES[mode]:
        row = dig(train_step, "batch_sizes", str(batch)) or {}
        for m in MODES:
            for f in ("tiles_per_s", "peak_mem_mib", "gpu_busy_share"):
                figures[f"train_step.b{batch}.{m}.{f}"] = dig(row, m, f)
        figures[f"train_step.b{batch}.compile.compile_s"] = dig(row, "compile", "compile_s")

    loader = last_with(bench["dataloader"], "workers")
    context["dataloader"] = loader
    rates = {int(k): dig(v, "tiles_per_s") for k, v in (loader.get("workers") or {}).items()}
    figures["dataloader.per_worker_tiles_per_s"] = loader.get("per_worker_tiles_per_s")
    figures["dataloader.all_workers_tiles_per_s"] = rates[max(rates)] if rates else None
    e2e = loader.get("end_to_end") or {}
    figures["dataloader.end_to_end.busy_share"] = e2e.get("gpu_busy_share")
    batch = next((v.get("batch_size") for v in (loader.get("workers") or {}).values()), None)
    if number(e2e.get("wall_s")) and number(e2e.get("steps")) and number(batch):
        figures["dataloader.end_to_end.tiles_per_s"] = round(e2e["steps"] * batch / e2e["wall_s"], 2)

    predict = last_with(bench["predict"], "grid")
    context["predict"] = predict
    for scheme in SCHEMES:
        figures[f"predict.{scheme}.mp_per_s"] = dig(predict, scheme, "megapixels_per_s")
        figures[f"predict.{scheme}.seconds"] = dig(predict, scheme, "seconds_best")

    cache = last_with(bench["rootsam_cache"], "epoch_s")
    context["rootsam_cache"] = cache
    for name in ("no_cache", "cache_cold", "cache_warm"):
        figures[f"rootsam_cache.{name}_epoch_s"] = dig(cache, "epoch_s", name)
    figures["rootsam_cache.speedup_warm"] = cache.get("speedup_warm")

    figures.update(train_figures(work))
    steps = read_steps(work)
    figures["train.gpu_util_mean"] = mean_util(gpu_samples(work), steps.get("train"))

    for t in THRESHOLDS:
        path = work / f"eval_t{t}" / "summary.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        context[f"eval_t{t}"] = result
        pooled = result.get("pooled") or {}
        figures[f"eval.t{t}.pooled_dice"] = pooled.get("dice")
        figures[f"eval.t{t}.precision"] = pooled.get("precision")
        figures[f"eval.t{t}.recall"] = pooled.get("recall")
        figures[f"eval.t{t}.per_image_f1_mean"] = dig(result, "per_image", "mean", "f1")
        figures[f"eval.t{t}.length_spearman"] = dig(result, "length_agreement", "spearman")
        figures[f"eval.t{t}.length_r2"] = dig(result, "length_agreement", "r2")
        figures[f"eval.t{t}.n_images"] = result.get("n_images")

    context["steps"] = steps
    machine = json_objects(work / "machine.json")  # run.sh's own reading, whatever step failed
    context["machine"] = machine[-1] if machine else {"device": train_step.get("device")}
    return figures, context


def summarise(work: Path, mode: str, budget: float | None = None, bundle: Path | None = None) -> dict[str, Any]:
    values, context = collect(work, mode)
    keys = figure_keys(mode)
    figures = {key: _round(number(values.get(key))) for key in keys}
    extra = {k: _round(number(v)) for k, v in values.items() if k not in figures}
    steps = context["steps"]
    missing = {}
    for key in keys:
        if figures[key] is not None:
            continue
        if mode == "smoke" and gpu_only(key):
            missing[key] = "needs a CUDA GPU (smoke run on the CPU)"
            continue
        name = step_of(key)
        step = steps.get(name)
        if step is None:
            missing[key] = f"step {name} did not run"
        elif step.get("status") != "ok":
            missing[key] = f"step {step['step']} {step.get('status')} (rc {step.get('rc')})"
        else:
            missing[key] = "not in the step's output"
    starts = [number(s.get("start")) for s in steps.values() if number(s.get("start"))]
    ends = [number(s.get("end")) for s in steps.values() if number(s.get("end"))]
    summary: dict[str, Any] = {
        "study": "experiments/gpu/run.sh (issue 17)",
        "mode": mode,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": context["machine"],
        "budget_s": budget,
        "steps_wall_s": round(max(ends) - min(starts), 1) if starts and ends else None,
        "steps": {name: {k: s.get(k) for k in ("status", "rc", "seconds", "limit_s")} for name, s in steps.items()},
        "figures": figures,
        "gpu_only": [k for k in keys if gpu_only(k)],
        "missing": missing,
        "extra": extra,
        "train_max_time": _text(work / "train_max_time.txt").strip() or None,
        "best_checkpoint": _text(work / "best_checkpoint.txt").strip() or None,
    }
    manifest = bundle / "MANIFEST.json" if bundle else None
    if manifest is not None and manifest.is_file():
        data = json.loads(manifest.read_text())
        summary["bundle"] = {k: data.get(k) for k in ("created", "mb", "scans", "wheels")}
    summary["complete"] = all(s.get("status") == "ok" for s in steps.values()) and not [
        k for k in missing if not (mode == "smoke" and gpu_only(k))
    ]
    summary["_context"] = context  # for the Markdown only; dropped from the JSON
    return summary


def _round(value: float | int | None) -> float | int | None:
    if isinstance(value, float):
        return float(f"{value:.4g}") if abs(value) < 1e4 else round(value, 1)
    return value


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown(summary: dict[str, Any]) -> str:
    fig, ctx = summary["figures"], summary["_context"]
    m = summary["machine"]
    mode = summary["mode"]
    lines = [
        f"## GPU study: `bash experiments/gpu/run.sh{' --smoke' if mode == 'smoke' else ''}` ({summary['date']})",
        "",
        f"**Machine:** {m.get('device') or '?'}"
        + (f" ({m['gpu_memory_gib']} GiB, CUDA {m.get('cuda')})" if m.get("gpu_memory_gib") else "")
        + f", {m.get('cpu_count') or '?'} CPU cores, /dev/shm {m.get('dev_shm_gib', '?')} GiB; "
        f"torch {m.get('torch') or '?'}, "
        f"Python {m.get('python') or '?'}. Budget {summary['budget_s']} s; the steps took {summary['steps_wall_s']} s."
        + (
            " **Smoke run: tiny sizes on a CPU, the figures test the script, not the hardware.**"
            if mode == "smoke"
            else ""
        ),
        "",
        "| step | status | seconds | limit (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {s['status']} | {s['seconds']} | {s['limit_s']} |" for n, s in summary["steps"].items()]
    ts = ctx.get("train_step") or {}
    lines += [
        "",
        f"### Training step (`benchmarks/train_step.py --net {ts.get('net', '?')}`, tiles {ts.get('tile_in', '?')} -> "
        f"{ts.get('tile_out', '?')}, {ts.get('steps', '?')} timed steps)",
        "",
        "| batch | mode | tiles/s | vs fp32 | peak memory (MiB) | GPU busy share | compile (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for batch in BATCH_SIZES[mode]:
        base = fig.get(f"train_step.b{batch}.fp32.tiles_per_s")
        for mode_name in MODES:
            rate = fig.get(f"train_step.b{batch}.{mode_name}.tiles_per_s")
            ratio = f"{rate / base:.2f}x" if rate and base else "-"
            row = dig(ts, "batch_sizes", str(batch), mode_name) or {}
            note = row.get("skipped") or row.get("error")
            compile_s = fig.get(f"train_step.b{batch}.compile.compile_s") if mode_name == "compile" else None
            lines.append(
                f"| {batch} | {mode_name} | {_fmt(rate) if rate else (note or '-')[:60]} | {ratio} | "
                f"{_fmt(fig.get(f'train_step.b{batch}.{mode_name}.peak_mem_mib'), 5)} | "
                f"{_fmt(fig.get(f'train_step.b{batch}.{mode_name}.gpu_busy_share'))} | {_fmt(compile_s)} |"
            )
    dl = ctx.get("dataloader") or {}
    e2e = dl.get("end_to_end") or {}
    lines += ["", f"### Loader (`benchmarks/dataloader.py --end-to-end`, {dl.get('data', '?')})", ""]
    lines += ["| workers | tiles/s (loader alone) |", "|---|---|"]
    lines += [f"| {w} | {_fmt(v.get('tiles_per_s'))} |" for w, v in (dl.get("workers") or {}).items()]
    lines += [
        "",
        f"End to end ({e2e.get('net', '?')} U-Net on {e2e.get('device', '?')}, {e2e.get('workers', '?')} workers, "
        f"{e2e.get('steps', '?')} steps): step busy share **{_fmt(fig.get('dataloader.end_to_end.busy_share'))}** "
        f"(goal >= 0.9), {_fmt(fig.get('dataloader.end_to_end.tiles_per_s'))} tiles/s fed.",
    ]
    pr = ctx.get("predict") or {}
    lines += [
        "",
        f"### Whole-scan prediction (`benchmarks/predict.py --net {pr.get('net', '?')} --tta`, "
        f"{'x'.join(map(str, pr.get('size', ['?'])))} px, batch {pr.get('batch_size', '?')})",
        "",
        "| scheme | tiles | seconds (best) | MP/s | vs grid |",
        "|---|---|---|---|---|",
    ]
    grid = fig.get("predict.grid.mp_per_s")
    for scheme in SCHEMES:
        rate = fig.get(f"predict.{scheme}.mp_per_s")
        lines.append(
            f"| {scheme} | {dig(pr, scheme, 'tiles') or '-'} | {_fmt(fig.get(f'predict.{scheme}.seconds'))} | "
            f"{_fmt(rate)} | {f'{rate / grid:.2f}x' if rate and grid else '-'} |"
        )
    rc = ctx.get("rootsam_cache") or {}
    lines += [
        "",
        f"### RootSAM embedding cache (`benchmarks/rootsam_cache.py --config {rc.get('config', '?')}`, "
        f"{rc.get('image_size', '?')} px, {rc.get('tiles_per_epoch', '?')} tiles per epoch, random weights)",
        "",
        "| no cache (s/epoch) | cache, first epoch | cache, later epochs | speed-up |",
        "|---|---|---|---|",
        f"| {_fmt(fig.get('rootsam_cache.no_cache_epoch_s'))} | {_fmt(fig.get('rootsam_cache.cache_cold_epoch_s'))} | "
        f"{_fmt(fig.get('rootsam_cache.cache_warm_epoch_s'))} | {_fmt(fig.get('rootsam_cache.speedup_warm'))}x |",
        "",
        f"### U-Net training (`+experiment=unet_smith2020 trainer=gpu model.channels_last=true`, "
        f"{summary.get('train_max_time') or '?'}; data {(ctx.get('eval_t0.5') or {}).get('data', '?')})",
        "",
        "| epochs | steps | best val F1 | s/epoch (with validation) | tiles/s | GPU utilisation (nvidia-smi) |",
        "|---|---|---|---|---|---|",
        "| "
        + " | ".join(
            _fmt(fig.get(f"train.{f}"), 4)
            for f in ("epochs", "steps", "best_val_f1", "epoch_s_median", "tiles_per_s", "gpu_util_mean")
        )
        + " |",
        "",
        "Best checkpoint on the val scans (masks as shipped; pooled over all pixels; root length: skeleton, "
        "predicted vs annotated over the scans):",
        "",
        "| threshold | images | pooled Dice | precision | recall | per-image F1 | length Spearman | length r² |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in THRESHOLDS:
        lines.append(
            f"| {t} | {_fmt(summary['extra'].get(f'eval.t{t}.n_images'))} | "
            + " | ".join(
                _fmt(fig.get(f"eval.t{t}.{f}"), 4)
                for f in ("pooled_dice", "precision", "recall", "per_image_f1_mean", "length_spearman", "length_r2")
            )
            + " |"
        )
    cpu_only_run = [k for k in summary["missing"] if mode == "smoke" and gpu_only(k)]
    lost = {k: v for k, v in summary["missing"].items() if k not in cpu_only_run}
    if cpu_only_run:
        lines += ["", f"Not measured on a CPU ({len(cpu_only_run)} GPU-only figures): GPU busy share, nvidia-smi."]
    if lost:
        lines += ["", "Missing figures: " + "; ".join(f"`{k}`: {v}" for k, v in lost.items()) + "."]
    if summary.get("bundle"):
        b = summary["bundle"]
        mb = b.get("mb") or {}
        lines += [
            "",
            f"Bundle (`make gpu-bundle`, {b.get('created')}): {mb.get('bundle')} MB, {mb.get('with_repository')} MB "
            "with the repository's tracked files.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="run.sh's working folder (WORK)")
    parser.add_argument("out", type=Path, help="where summary.json and summary.md go (OUT)")
    parser.add_argument("--mode", choices=sorted(BATCH_SIZES), required=True)
    parser.add_argument("--bundle", type=Path, default=None, help="the bundle folder (its MANIFEST.json)")
    parser.add_argument("--budget", type=float, default=None, help="run.sh's BUDGET_S")
    args = parser.parse_args(argv)
    summary = summarise(args.work, args.mode, args.budget, args.bundle)
    text = markdown(summary)
    del summary["_context"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "summary.md").write_text(text)
    print(text)
    if not summary["complete"]:
        failed = [n for n, s in summary["steps"].items() if s.get("status") != "ok"]
        print(
            f"summarize: incomplete run: steps not ok: {', '.join(failed) or 'none'}; figures missing: "
            f"{', '.join(k for k in summary['missing'] if not (args.mode == 'smoke' and gpu_only(k))) or 'none'} "
            f"(see {args.out / 'summary.json'} and the steps' logs)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
