"""rootseg.export: TorchScript and ONNX models reproduce PyTorch at any batch size, or nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import rootseg.export as export_mod
from rootseg.inference import sliding_window_probs
from rootseg.modules.loading import load_module

TILE_IN, TILE_OUT = 92, 52  # a two-level U-Net with valid convs: 92 -> 52


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A checkpoint of a very small U-Net, written through Lightning like rootseg.train's."""
    import hydra
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from rootseg.utils.config import CONFIG_DIR

    root = tmp_path_factory.mktemp("tiny")
    overrides = [
        "+experiment=unet_demo",
        "model.net.base_channels=4",
        "model.net.depth=2",
        "model.net.groups=2",
        f"data.tile_in={TILE_IN}",
        f"data.tile_out={TILE_OUT}",
    ] + [f"paths.{k}={root}" for k in ("data_dir", "output_dir", "work_dir")]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides)
    GlobalHydra.instance().clear()
    L.seed_everything(1, verbose=False)
    model = hydra.utils.instantiate(cfg.model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    trainer = L.Trainer(accelerator="cpu", enable_model_summary=False, **quiet)
    trainer.strategy.connect(model)
    path = root / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def _cfg(compose, ckpt: Path, *overrides: str):
    return compose("export", [f"ckpt_path={ckpt}", *overrides])


def _reference(ckpt: Path, tiles: torch.Tensor) -> np.ndarray:
    module = load_module(ckpt)
    with torch.no_grad():
        return module.predict_tiles(tiles).numpy()


def test_torchscript_matches_pytorch_at_any_batch(compose, tiny_ckpt, tmp_path):
    out = tmp_path / "tiny.pt"
    summary = export_mod.export(_cfg(compose, tiny_ckpt, "format=torchscript", f"output={out}"))
    assert summary["max_abs_diff"] <= 1e-4 and summary["tile_out"] == TILE_OUT
    extra = {"rootseg.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["rootseg.json"])["tile_in"] == TILE_IN
    for batch in (1, 3):
        tiles = torch.rand(batch, 3, TILE_IN, TILE_IN) * 255
        with torch.no_grad():
            got = loaded(tiles).numpy()
        assert got.shape == (batch, TILE_OUT, TILE_OUT)
        np.testing.assert_allclose(got, _reference(tiny_ckpt, tiles), atol=1e-5)


def test_onnx_matches_pytorch_at_any_batch_and_works_as_a_tile_predictor(compose, tiny_ckpt, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "tiny.onnx"
    summary = export_mod.export(_cfg(compose, tiny_ckpt, "format=onnx", f"output={out}"))
    assert summary["max_abs_diff"] <= 1e-3 and set(summary["max_abs_diff_by_batch"]) == {1, 3}
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["rootseg.tile_in"] == str(TILE_IN) and meta["rootseg.tile_out"] == str(TILE_OUT)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] not in (1, 2, 3)  # a symbolic batch dimension
    for batch in (1, 3):
        tiles = torch.rand(batch, 3, TILE_IN, TILE_IN) * 255
        got = session.run(None, {"tiles": tiles.numpy()})[0]
        assert got.shape == (batch, TILE_OUT, TILE_OUT)
        np.testing.assert_allclose(got, _reference(tiny_ckpt, tiles), atol=1e-4)

    # the exported model drops into the sliding window in place of the PyTorch module
    image = (np.random.default_rng(0).random((70, 130, 3)) * 255).astype(np.uint8)
    module = load_module(tiny_ckpt)

    def onnx_tiles(tiles: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"tiles": tiles.float().numpy()})[0])

    kwargs = {"tile_in": TILE_IN, "tile_out": TILE_OUT, "batch_size": 3}
    np.testing.assert_allclose(
        sliding_window_probs(image, onnx_tiles, **kwargs).numpy(),
        sliding_window_probs(image, module.predict_tiles, **kwargs).numpy(),
        atol=1e-4,
    )


def test_a_mismatch_fails_and_leaves_no_file(compose, tiny_ckpt, tmp_path, monkeypatch):
    real = export_mod._run_torchscript
    monkeypatch.setattr(export_mod, "_run_torchscript", lambda path, tiles: real(path, tiles) + 0.01)
    out = tmp_path / "bad.pt"
    with pytest.raises(export_mod.ExportError, match="differs from PyTorch"):
        export_mod.export(_cfg(compose, tiny_ckpt, "format=torchscript", f"output={out}"))
    assert list(tmp_path.iterdir()) == []


def test_rootsam_and_unknown_formats_are_refused(compose, tiny_ckpt, monkeypatch):
    with pytest.raises(ValueError, match="format must be one of"):
        export_mod.export(_cfg(compose, tiny_ckpt, "format=tflite"))
    monkeypatch.setattr(export_mod, "load_module", lambda path: SimpleNamespace(kind="rootsam"))
    with pytest.raises(NotImplementedError, match="prompt encoder \\+ mask decoder"):
        export_mod.export(_cfg(compose, tiny_ckpt))
