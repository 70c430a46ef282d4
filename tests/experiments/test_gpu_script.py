"""experiments/gpu: the GPU study's one command runs (`run.sh --smoke` on the CPU), reports every figure, and
its bundle tooling refuses what would not install on the GPU machine."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "experiments" / "gpu" / "run.sh"
MODES = ("fp32", "bf16", "channels_last", "bf16_channels_last", "compile")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", REPO / "experiments" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_figures(batch_sizes: tuple[int, int]) -> tuple[set[str], set[str]]:
    """(every figure the issue asks for, those only a GPU can give), written out here independently."""
    keys, gpu = set(), set()
    for b in batch_sizes:  # train_step: fp32 eager vs bf16, channels_last, compile; tiles/s, memory, busy share
        for m in MODES:
            keys |= {f"train_step.b{b}.{m}.tiles_per_s", f"train_step.b{b}.{m}.peak_mem_mib"}
            gpu.add(f"train_step.b{b}.{m}.gpu_busy_share")
        keys.add(f"train_step.b{b}.compile.compile_s")
    keys |= {"dataloader.per_worker_tiles_per_s", "dataloader.all_workers_tiles_per_s"}
    keys |= {"dataloader.end_to_end.busy_share", "dataloader.end_to_end.tiles_per_s"}
    for scheme in ("grid", "blended", "blended_tta"):  # MP/s for grid and blended + TTA
        keys |= {f"predict.{scheme}.mp_per_s", f"predict.{scheme}.seconds"}
    keys |= {f"rootsam_cache.{k}" for k in ("no_cache_epoch_s", "cache_cold_epoch_s", "cache_warm_epoch_s")}
    keys |= {"rootsam_cache.speedup_warm"}
    keys |= {f"train.{k}" for k in ("epochs", "steps", "best_val_f1", "epoch_s_median", "tiles_per_s")}
    gpu.add("train.gpu_util_mean")
    for t in ("0.5", "0.9"):  # pooled Dice and root-length agreement at both thresholds
        for k in ("pooled_dice", "precision", "recall", "per_image_f1_mean", "length_spearman", "length_r2"):
            keys.add(f"eval.t{t}.{k}")
    return keys | gpu, gpu


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """One `run.sh --smoke` for the module (~75 s on 2 idle cores): its OUT folder."""
    out = tmp_path_factory.mktemp("gpu_smoke")
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out)}
    done = subprocess.run(["bash", str(RUN), "--smoke"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"run.sh --smoke failed (rc {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    )
    return out


def test_smoke_run_reports_every_figure_as_a_number(smoke):
    summary = json.loads((smoke / "summary.json").read_text())
    assert summary["mode"] == "smoke" and summary["complete"] is True
    assert {name: s["status"] for name, s in summary["steps"].items()} == {
        name: "ok"
        for name in ("train_step", "dataloader", "predict", "rootsam_cache", "train", "eval_t0.5", "eval_t0.9")
    }
    keys, gpu = expected_figures((1, 2))
    figures = summary["figures"]
    assert set(figures) == keys
    not_numbers = {k: v for k, v in figures.items() if k not in gpu and not isinstance(v, (int, float))}
    assert not not_numbers, f"figures without a number: {not_numbers}"
    assert all(figures[k] is None for k in gpu)  # no CUDA here: null, with the reason, never a made-up number
    assert set(summary["missing"]) == gpu
    # the figures are the steps' real outputs, not placeholders
    assert figures["train.epochs"] == 1 and figures["train.steps"] >= 1
    assert 0 <= figures["eval.t0.5.pooled_dice"] <= 1 and -1 <= figures["eval.t0.9.length_spearman"] <= 1
    assert summary["extra"]["eval.t0.5.n_images"] >= 3  # enough scans for a root-length agreement
    assert figures["predict.blended_tta.seconds"] > figures["predict.grid.seconds"]
    assert summary["train_max_time"].startswith("trainer.max_time=00:")


def test_smoke_run_writes_the_tables_the_log_and_the_archive(smoke):
    text = (smoke / "summary.md").read_text()
    for heading in ("### Training step", "### Loader", "### Whole-scan prediction", "### RootSAM embedding cache"):
        assert heading in text
    assert "| 0.9 | 3 |" in text  # the eval table, one row per threshold
    assert "run.sh: done in" in (smoke / "run.log").read_text()
    names = set(
        subprocess.run(["tar", "tzf", str(smoke / "outputs.tar.gz")], capture_output=True, text=True).stdout.split()
    )
    assert "./train/csv/metrics.csv" in names and "./eval_t0.5/summary.json" in names
    assert not [n for n in names if n.endswith(".ckpt")]
    # what comes back from a device call: a few files, none in folders
    assert sorted(p.name for p in smoke.iterdir() if p.is_file()) == [
        "outputs.tar.gz",
        "run.log",
        "summary.json",
        "summary.md",
    ]


def test_summary_of_a_gpu_shaped_run_has_the_gpu_figures(smoke, tmp_path):
    """The same outputs as a GPU run gives them (batch 8 and 32, kernel busy shares, nvidia-smi samples)."""
    work = tmp_path / "work"
    shutil.copytree(smoke / "work", work, ignore=shutil.ignore_patterns("*.ckpt", "shared", "synthetic"))
    text = (work / "logs" / "train_step.out").read_text()
    train_step = json.loads(text[text.index("{") :])
    rows = train_step["batch_sizes"]
    train_step["batch_sizes"] = {"8": rows["1"], "32": rows["2"]}
    for row in train_step["batch_sizes"].values():
        for figures in row.values():
            figures["gpu_busy_share"] = 0.9
    (work / "logs" / "train_step.out").write_text(json.dumps(train_step))
    steps = [json.loads(line) for line in (work / "steps.jsonl").read_text().splitlines()]
    train = next(s for s in steps if s["step"] == "train")
    stamps = np.linspace(train["start"], train["end"], 5)
    (work / "gpu_samples.csv").write_text(
        "".join(
            f"{time.strftime('%Y/%m/%d %H:%M:%S', time.localtime(t))}.{int(t % 1 * 1000):03d}, 80, 1000\n"
            for t in stamps
        )
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(REPO / "experiments/gpu/summarize.py"), str(work), str(out), "--mode", "gpu"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    keys, gpu = expected_figures((8, 32))
    assert set(summary["figures"]) == keys and summary["missing"] == {}
    assert summary["figures"]["train.gpu_util_mean"] == pytest.approx(0.8)
    assert summary["figures"]["train_step.b32.compile.gpu_busy_share"] == pytest.approx(0.9)


def test_a_failed_step_is_recorded_and_the_summary_says_which(smoke, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(smoke / "work", work, ignore=shutil.ignore_patterns("*.ckpt", "shared", "synthetic"))
    (work / "logs" / "predict.out").write_text("")
    steps = (
        (work / "steps.jsonl")
        .read_text()
        .replace('"step": "predict", "status": "ok", "rc": 0', '"step": "predict", "status": "timeout", "rc": 124')
    )
    (work / "steps.jsonl").write_text(steps)
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments/gpu/summarize.py"),
            str(work),
            str(tmp_path / "out"),
            "--mode",
            "smoke",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "steps not ok: predict" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["missing"]["predict.grid.mp_per_s"] == "step predict timeout (rc 124)"
    assert summary["figures"]["train.epochs"] == 1  # the other steps' figures are kept


def test_run_without_packages_or_bundle_says_how_to_make_one(tmp_path):
    python = tmp_path / "python"  # a Python without site-packages: no hydra, no sam2
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "OUT": str(tmp_path / "out"), "BUNDLE": str(tmp_path / "none")}
    done = subprocess.run(["bash", str(RUN)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no wheels in" in done.stderr and "make gpu-bundle" in done.stderr


def test_run_refuses_unknown_arguments():
    done = subprocess.run(["bash", str(RUN), "--smok"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage: bash experiments/gpu/run.sh [--smoke]" in done.stderr


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    meta = "\n".join([f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)])
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", meta + "\n\nlong description\n")
    return path


def test_bundle_closure_names_what_would_not_install(tmp_path):
    bundle = _load("bundle")
    good = [
        _wheel(
            tmp_path, "pydantic", "2.14.4", ["pydantic-core==2.50.5", 'eval-type-backport; python_version < "3.10"']
        ),
        _wheel(tmp_path, "pydantic-core", "2.50.5", ["typing-extensions>=4.16.0"]),  # on the GPU image
    ]
    assert bundle.check_closure(good) == []
    wrong_version = [good[0], _wheel(tmp_path, "pydantic_core", "2.41.0", [])]
    assert bundle.check_closure(wrong_version) == [
        "pydantic needs pydantic-core==2.50.5, the bundle has pydantic-core 2.41.0"
    ]
    absent = [_wheel(tmp_path, "albucore", "0.0.24", ["stringzilla>=3.10.4", "numpy>=1.24.4"])]
    assert bundle.check_closure(absent) == [
        "albucore needs stringzilla>=3.10.4: neither in the bundle nor on the GPU image"
    ]


def test_bundle_data_writes_one_bit_masks_that_read_back_as_the_jpeg_masks(tmp_path):
    import cv2
    from PIL import Image

    def read_mask(path: Path) -> np.ndarray:  # (the smoke run reads them through rootseg: data=segroot)
        return np.asarray(Image.open(path)).astype(np.uint8)

    bundle = _load("bundle")
    src = tmp_path / "segroot"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    rng = np.random.default_rng(0)
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(src / "images" / f"{stem}.jpg"), rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
        grey = np.zeros((64, 96), np.uint8)
        grey[10:30, 20:25] = 255
        grey[40:42, :] = 140  # JPEG-grey edges: root above 127 as SegRoot reads them
        cv2.imwrite(str(src / "masks" / f"{stem}-mask.jpg"), grey)
    (src / "split.json").write_text(json.dumps({"train": ["a", "b"], "val": ["c"]}))

    counts = bundle.write_data(tmp_path / "out", src)
    assert counts == {"train": 2, "val": 1}
    for stem in ("a", "c"):
        png = tmp_path / "out" / "masks" / f"{stem}-mask.png"
        assert Image.open(png).mode == "1"
        expected = (cv2.imread(str(src / "masks" / f"{stem}-mask.jpg"), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8)
        np.testing.assert_array_equal(read_mask(png), expected)
    assert (tmp_path / "out" / "images" / "a.jpg").read_bytes() == (src / "images" / "a.jpg").read_bytes()

    crops = bundle.write_data(tmp_path / "crops", src, scans=2, crop=32, crops=2)
    assert crops == {"train": 2, "val": 2}
    split = json.loads((tmp_path / "crops" / "split.json").read_text())
    assert split == {"train": ["a_c0", "a_c1"], "val": ["c_c0", "c_c1"]}
    assert read_mask(tmp_path / "crops" / "masks" / "a_c0-mask.png").sum() > 0  # the most rooted window first

    with pytest.raises(bundle.BundleError, match="SegRoot not found"):
        bundle.write_data(tmp_path / "x", tmp_path / "nowhere")
