"""The Frangi + CMA-ES baseline run as a rootseg model: search in fit, tuned parameters in the checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_run

from rootseg.baselines.frangi import TUNED, FrangiParams, frangi_segment
from rootseg.inference.frangi import FrangiInference
from rootseg.inference.predictor import Predictor
from rootseg.inference.settings import InferenceSettings
from rootseg.io.masks import read_pair
from rootseg.metrics.pixels import confusion, scores
from rootseg.tasks.checkpoints import load_module
from rootseg.tasks.frangi import FrangiModule

# a deliberately poor start (scales too coarse, threshold too high), so the search has room to improve
POOR_START = FrangiParams(sigma_min=6.0, sigma_max=20.0, beta=1.5, threshold=0.3, min_object_size=1500.0)


def frangi_overrides(data_root: Path, max_evals: int = 20) -> list[str]:
    return [
        "+experiment=frangi_cmaes",
        "data=folder",
        f"data.root={data_root}",
        f"model.max_evals={max_evals}",
        "model.downscale=1",  # full resolution, so `pooled_f1` below recomputes exactly what the model does
        "model.upsample=nearest",
        "logger=csv",
        *(f"model.{name}={getattr(POOR_START, name)}" for name in TUNED),
    ]


def pooled_f1(params: FrangiParams, root: Path, split: str) -> float:
    names = json.loads((root / "split.json").read_text())[split]
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for name in names:
        image, mask = read_pair(root / "images" / f"{name}.png", root / "masks" / f"{name}.png")
        for key, value in confusion(frangi_segment(image, params), mask).items():
            totals[key] += value
    return scores(**totals)["f1"]


@pytest.fixture(scope="module")
def frangi_run(tmp_path_factory, synthetic_dir) -> tuple[dict, Path]:
    from rootseg.tasks.fit import train

    run_dir = tmp_path_factory.mktemp("frangi_run")
    metrics = train(compose_run("train", frangi_overrides(synthetic_dir), run_dir))
    return metrics, run_dir


def test_experiment_composes_with_the_segroot_settings(tmp_path):
    cfg = compose_run(
        "train",
        ["+experiment=frangi_cmaes", "data=segroot", "model.downscale=4", "model.upsample=linear"],
        tmp_path,
    )
    assert cfg.model._target_ == "rootseg.tasks.frangi.FrangiModule"
    assert cfg.experiment_name == "frangi_cmaes" and cfg.trainer.max_epochs == 1
    assert cfg.trainer.limit_train_batches == 1 and cfg.callbacks.lr_monitor is None
    assert cfg.model.state_path == f"{tmp_path}/frangi_search.pkl"
    module = FrangiModule(**{k: v for k, v in cfg.model.items() if k != "_target_"})
    assert module.downscale == 4 and module.upsample == "linear"
    assert not any(True for _ in module.parameters())  # nothing for an optimizer
    assert {f"frangi_{name}" for name in TUNED} == set(module.state_dict())


def test_fit_tunes_the_parameters_and_improves_validation_f1(frangi_run, synthetic_dir):
    metrics, run_dir = frangi_run
    start_f1 = pooled_f1(POOR_START, synthetic_dir, "val")
    assert metrics["val/f1"] > start_f1 + 0.05
    history = pd.read_csv(run_dir / "frangi_search.csv")
    assert 1 < len(history) <= 20 and history["f1"].max() > history["f1"].iloc[0]
    assert (run_dir / "frangi_search.pkl").is_file()  # the resumable search state
    assert Path(metrics["best_checkpoint"]).is_file()


def test_checkpoint_restores_the_tuned_parameters(frangi_run, synthetic_dir):
    metrics, run_dir = frangi_run
    module = load_module(metrics["best_checkpoint"], expected_kind="frangi")
    assert isinstance(module, FrangiModule)
    best = pd.read_csv(run_dir / "frangi_search.csv").sort_values("f1", ascending=False).iloc[0]
    for name in TUNED:
        assert module.params.__getattribute__(name) == pytest.approx(best[name], rel=1e-12)
    state = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=False)["state_dict"]
    assert state["frangi_threshold"].dtype == torch.float64
    assert module.params != POOR_START
    # the validation F1 Lightning logged is the restored segmenter's, recomputed independently
    assert pooled_f1(module.params, synthetic_dir, "val") == pytest.approx(metrics["val/f1"], abs=1e-5)
    image, _ = read_pair(*(sorted((synthetic_dir / d).glob("*.png"))[0] for d in ("images", "masks")))
    probs = Predictor(module).probabilities(image)
    assert probs.dtype == np.float32 and probs.shape == image.shape[:2]
    assert set(np.unique(probs)) <= {0.0, 1.0}
    # the sliding-window settings of other models are refused by name, not silently ignored
    with pytest.raises(ValueError, match="step=10, tta=True: a frangi model cannot honour these"):
        Predictor(module, InferenceSettings(step=10, tta=True))
    with pytest.raises(ValueError, match="runs on the CPU"):
        on_gpu = InferenceSettings()
        object.__setattr__(on_gpu, "device", "cuda")  # as on a GPU machine (this one has none)
        FrangiInference(module, on_gpu, None)


def test_eval_of_a_frangi_checkpoint(frangi_run, tmp_path):
    from rootseg.evaluation.run import evaluate

    metrics, _ = frangi_run
    result = evaluate(compose_run("eval", [f"ckpt_path={metrics['best_checkpoint']}"], tmp_path))
    assert result["pooled"]["f1"] == pytest.approx(metrics["test/f1"], abs=1e-5)
    assert result["model"]["kind"] == "frangi" and result["model"]["experiment_name"] == "frangi_cmaes"
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "per_image.csv").is_file()


def test_a_second_run_in_the_same_directory_continues_the_search(frangi_run, synthetic_dir, tmp_path):
    """The search state lives in the run directory: a killed run started again resumes, and a larger
    `max_evals` extends the same search rather than starting over."""
    from rootseg.tasks.fit import train

    _, run_dir = frangi_run
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir, ignore=shutil.ignore_patterns("checkpoints", "csv"))
    before = pd.read_csv(resumed_dir / "frangi_search.csv")
    train(compose_run("train", frangi_overrides(synthetic_dir, max_evals=30), resumed_dir))
    after = pd.read_csv(resumed_dir / "frangi_search.csv")
    assert len(after) > len(before)
    pd.testing.assert_frame_equal(after.iloc[: len(before)].drop(columns="seconds"), before.drop(columns="seconds"))


def test_fast_dev_run_scores_only_the_start_point(synthetic_dir, tmp_path):
    from rootseg.tasks.fit import train

    metrics = train(compose_run("train", [*frangi_overrides(synthetic_dir), "debug=fdr"], tmp_path))
    assert len(pd.read_csv(tmp_path / "frangi_search.csv")) == 1
    assert not (tmp_path / "frangi_search.pkl").exists() and "test/f1" in metrics
