"""RootSAM end to end on CPU: configs, stage 1 / stage 2 / baseline runs, freezing, checkpoints, cache, predict.

Everything uses `model/net=sam2.1_micro` (sam2.1_hiera_t shrunk to image_size 128, random weights) on a tiny
synthetic set (6 images of 256 x 256) resized to 256 and cut into 128 px tiles, so each run takes seconds.
A random-weight "Meta" checkpoint of the micro model is written by the tests (none can be downloaded here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import torch
from conftest import REPO, child_env, compose_run
from hydra.core.global_hydra import GlobalHydra
from micro_rootsam import micro_overrides, write_micro_sam_file
from omegaconf import OmegaConf
from probes import KeepTestRecords, mean_patch_iou, pooled_f1

from rootseg.config.run_config import CONFIG_DIR, instantiate_group, resolved_container
from rootseg.inference.predictor import Predictor
from rootseg.inference.rootsam import RootSAMInference
from rootseg.inference.settings import InferenceSettings
from rootseg.models.freezing import assert_frozen_unchanged, snapshot_frozen
from rootseg.tasks.checkpoints import CheckpointLoadError, load_module

EXPERIMENTS = ["rootsam_baseline", "rootsam_stage1", "rootsam_stage2"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rootsam_data")


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory) -> Path:
    """A Meta-format ({"model": state_dict}) checkpoint of the micro model with random weights."""
    return write_micro_sam_file(tmp_path_factory.mktemp("sam") / "sam2.1_micro_random.pt")


def small(data_dir: Path, *extra: str) -> list[str]:
    """The micro net's stage overrides; the experiment comes in `extra`."""
    return micro_overrides(data_dir, *extra, experiment=None)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)


# ---------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("data", ["synthetic", "segroot"])
def test_every_rootsam_experiment_composes(experiment, data):
    cfg = compose([f"+experiment={experiment}", f"data={data}"])
    assert cfg.experiment_name == experiment
    assert cfg.data._target_ == "rootseg.datamodules.rootsam.RootSAMDataModule"
    assert cfg.model._target_ == "rootseg.tasks.rootsam.RootSAMModule"
    assert cfg.model.net.config_name == "sam2.1_hiera_l" and cfg.model.net.ckpt_path is None
    assert "tile_in" not in cfg.data and "train_transform" not in cfg.data  # no U-Net keys
    resize, tile = (2048, 1024) if experiment == "rootsam_stage2" else (2560, 512)
    assert (cfg.data.resize, cfg.data.tile, cfg.model.resize, cfg.model.tile) == (resize, tile, resize, tile)
    assert cfg.train is (experiment != "rootsam_baseline")
    if data == "segroot":
        assert cfg.data.source.mask_suffix == "-mask"


def test_stage_and_net_choices_compose():
    cfg = compose(["+experiment=rootsam_baseline", "stage=stage2", "model/net=sam2.1_hiera_b+"])
    assert (cfg.data.resize, cfg.data.tile, cfg.stage_name) == (2048, 1024, "stage2")
    for name in ("t", "s", "b+", "l"):
        cfg = compose(["+experiment=rootsam_stage1", f"model/net=sam2.1_hiera_{name}"])
        assert cfg.model.net.config_name == f"sam2.1_hiera_{name}"
    # the U-Net experiments keep their datamodule whatever the source
    cfg = compose(["+experiment=unet_demo", "data=segroot"])
    assert cfg.data._target_.endswith("UNetDataModule") and cfg.data.tile_in == 276


def test_micro_net_config_equals_the_builder_constant():
    from rootseg.models.sam2_builder import SAM2_MICRO_OVERRIDES

    yaml = OmegaConf.load(Path(CONFIG_DIR) / "model" / "net" / "sam2.1_micro.yaml")
    expected = OmegaConf.create()
    for key, value in SAM2_MICRO_OVERRIDES.items():
        OmegaConf.update(expected, key, value, force_add=True)
    assert yaml.overrides == expected


def test_resizing_invents_no_mask_values_and_tiles_cover_the_image():
    from rootseg.tiling.resize import resize_pair, tile_origins

    rng = np.random.default_rng(0)
    mask = rng.choice(np.array([0, 1, 255], np.uint8), size=(216, 255))
    image = rng.integers(0, 255, (216, 255, 3), dtype=np.uint8)
    for size in (256, 100):
        resized, resized_mask = resize_pair(image, mask, size)
        assert resized.shape == (size, size, 3) and resized_mask.shape == (size, size)
        assert set(np.unique(resized_mask)) == {0, 1, 255}
    assert tile_origins(2560, 512)[-1] == (2048, 2048) and len(tile_origins(2560, 512)) == 25
    assert tile_origins(600, 256) == [(x, y) for y in (0, 256, 344) for x in (0, 256, 344)]  # last edge-aligned
    with pytest.raises(ValueError, match="larger than the resized image"):
        tile_origins(256, 512)


def test_datamodule_tiles_prompts_and_masks(data_dir):
    cfg = compose(small(data_dir, "+experiment=rootsam_stage1", "data.max_objects=4", "data.points_per_object=2"))
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    item = datamodule.train_dataset(0)[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 128, 128)
    assert set(item["mask"].unique().tolist()) <= {0, 1, 255}
    assert item["coords"].shape == (4, 2, 2) and item["labels"].shape == (4, 2) and item["valid"].any()
    for i in torch.nonzero(item["valid"]).flatten():  # every click lies on its own object
        x, y = item["coords"][i].long().T
        assert (item["objects"][y, x] == i + 1).all()
    assert (item["labels"][~item["valid"]] == -1).all()
    # validation prompts are fixed; training prompts change with the epoch
    val = datamodule.eval_dataset("val")
    assert torch.equal(val[0]["coords"], datamodule.eval_dataset("val")[0]["coords"])
    assert not torch.equal(datamodule.train_dataset(0)[0]["coords"], datamodule.train_dataset(1)[0]["coords"])
    # empty tiles, when kept, carry one click on soil whose target is an empty mask
    _, with_root, empty = datamodule._split("train")
    assert len(datamodule.training_tiles(0)) == len(with_root)
    datamodule.empty_tile_fraction = 1.0
    tiles = datamodule.training_tiles(0)
    assert len(tiles) == len(with_root) + len(empty)
    if empty:
        item = datamodule.train_dataset(0)[tiles.index(empty[0])]
        assert item["valid"].sum() == 1 and item["labels"][0, 0] == 1 and not item["objects"].any()
        x, y = item["coords"][0, 0].long()
        assert item["mask"][y, x] == 0


# ---------------------------------------------------------------------------------------------- stage 1
@pytest.fixture(scope="module")
def stage1(tmp_path_factory, data_dir, sam_file):
    """Stage 1 trained for two batches from the written SAM file, as rootseg.train does it."""
    run_dir = tmp_path_factory.mktemp("stage1")
    overrides = small(
        data_dir,
        "+experiment=rootsam_stage1",
        f"model.net.ckpt_path={sam_file}",
        "debug=limit",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "model.optimizer.lr=1e-3",
    )
    cfg = compose_run("train", overrides, run_dir)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model)
    module.run_config = resolved_container(cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    snapshot = snapshot_frozen(module)
    callbacks, loggers = instantiate_group(cfg.callbacks), instantiate_group(cfg.logger)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    trainer.fit(module, datamodule=datamodule)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return SimpleNamespace(cfg=cfg, module=module, trainer=trainer, snapshot=snapshot, before=before, ckpt=ckpt)


def test_frozen_encoder_unchanged_and_not_in_the_optimizer(stage1):
    module = stage1.module
    assert_frozen_unchanged(module, stage1.snapshot)
    optimised = {id(p) for group in stage1.trainer.optimizers[0].param_groups for p in group["params"]}
    names = {id(p): n for n, p in module.named_parameters()}
    assert optimised and all(module.get_parameter(names[i]).requires_grad for i in optimised)
    assert not any(names[i].startswith("net.sam.image_encoder") for i in optimised)
    decoder = [k for k in stage1.before if k.startswith("net.sam.sam_mask_decoder") and k.endswith("weight")]
    assert any(not torch.equal(stage1.before[k], module.state_dict()[k]) for k in decoder)  # it did train


def test_checkpoint_leaves_out_the_frozen_encoder_and_loads_back(stage1, data_dir):
    checkpoint = torch.load(stage1.ckpt, map_location="cpu", weights_only=False)
    assert checkpoint["rootseg"]["kind"] == "rootsam"
    assert not any(k.startswith("net.sam.image_encoder.") for k in checkpoint["state_dict"])
    assert checkpoint["rootseg"]["frozen_omitted"]["count"] > 0
    loaded = load_module(stage1.ckpt, expected_kind="rootsam")
    for key, value in stage1.module.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    image = np.random.default_rng(0).integers(0, 255, (200, 232, 3), dtype=np.uint8)
    stage1.module.eval()
    np.testing.assert_array_equal(whole_image(stage1.module, image).numpy(), whole_image(loaded, image).numpy())


def test_checkpoint_without_encoder_needs_the_same_sam_file(stage1, tmp_path):
    checkpoint = torch.load(stage1.ckpt, map_location="cpu", weights_only=False)
    checkpoint["rootseg"]["config"]["model"]["net"]["ckpt_path"] = None
    torch.save(checkpoint, tmp_path / "no_sam.ckpt")
    with pytest.raises(CheckpointLoadError, match="ckpt_path is null"):
        load_module(tmp_path / "no_sam.ckpt")
    write_micro_sam_file(tmp_path / "o.pt", seed=7)
    checkpoint["rootseg"]["config"]["model"]["net"]["ckpt_path"] = str(tmp_path / "o.pt")
    torch.save(checkpoint, tmp_path / "other_sam.ckpt")
    with pytest.raises(CheckpointLoadError, match="other frozen weights"):
        load_module(tmp_path / "other_sam.ckpt")
    del checkpoint["state_dict"]["net.sam.sam_mask_decoder.iou_token.weight"]
    torch.save(checkpoint, tmp_path / "broken.ckpt")
    with pytest.raises(CheckpointLoadError, match="not frozen"):
        load_module(tmp_path / "broken.ckpt")


def test_random_weights_are_stored_in_the_checkpoint(data_dir, tmp_path):
    cfg = compose_run("train", small(data_dir, "+experiment=rootsam_stage1"), tmp_path)
    module = hydra.utils.instantiate(cfg.model)
    assert module.save_frozen_weights
    module.run_config = resolved_container(cfg)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert any(k.startswith("net.sam.image_encoder.") for k in checkpoint["state_dict"])
    torch.save(checkpoint, tmp_path / "random.ckpt")
    loaded = load_module(tmp_path / "random.ckpt")
    for key, value in module.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


# ---------------------------------------------------------------------------------------------- runs
def test_stage2_starts_from_stage1_and_runs(stage1, data_dir, sam_file, tmp_path):
    from rootseg.tasks.fit import train

    overrides = small(
        data_dir,
        "+experiment=rootsam_stage2",
        f"model.net.ckpt_path={sam_file}",
        f"model.init_ckpt={stage1.ckpt}",
        "data.resize=256",
        "data.tile=256",
        "debug=fdr",
        "+callbacks.records._target_=probes.KeepTestRecords",
    )
    cfg = compose_run("train", overrides, tmp_path)
    module = hydra.utils.instantiate(cfg.model)
    module.setup("fit")
    trained = torch.load(stage1.ckpt, map_location="cpu", weights_only=False)["state_dict"]
    decoder = [k for k in trained if k.startswith("net.sam.sam_mask_decoder.")]
    assert decoder and all(torch.equal(module.state_dict()[k], trained[k]) for k in decoder)
    metrics = train(cfg)
    assert KeepTestRecords.records and metrics["test/f1"] == pytest.approx(pooled_f1(KeepTestRecords.records), abs=1e-6)


@pytest.mark.parametrize("experiment", ["rootsam_stage1", "rootsam_baseline"])
def test_fast_dev_runs(experiment, data_dir, tmp_path):
    from rootseg.tasks.fit import train

    probe = "+callbacks.records._target_=probes.KeepTestRecords"
    metrics = train(compose_run("train", small(data_dir, f"+experiment={experiment}", "debug=fdr", probe), tmp_path))
    # the logged numbers against the per-tile confusion counts: pooled F1, and the mean IoU of the tiles
    records = KeepTestRecords.records
    assert records and metrics["test/f1"] == pytest.approx(pooled_f1(records), abs=1e-6)
    assert metrics["test/patch_miou"] == pytest.approx(mean_patch_iou(records), abs=1e-6)
    assert ("val/f1" in metrics) is (experiment != "rootsam_baseline")


def _train_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rootseg.train", *overrides, f"hydra.run.dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(OMP_NUM_THREADS="1"),
    )


def test_cli_stage2_without_init_ckpt_stops_and_says_how_to_pass_stage1(data_dir, tmp_path):
    run = _train_cli(tmp_path, "+experiment=rootsam_stage2", "debug=fdr", *small(data_dir))
    output = run.stdout + run.stderr
    assert run.returncode == 2, output[-3000:]
    assert "model.init_ckpt=<stage 1 run>/checkpoints/last.ckpt" in output and "model.allow_raw_sam=true" in output
    assert "Traceback" not in output and "test/f1=" not in output


def test_cli_stage2_from_raw_sam_weights_only_when_asked(data_dir, tmp_path):
    run = _train_cli(tmp_path, "+experiment=rootsam_stage2", "debug=fdr", "model.allow_raw_sam=true", *small(data_dir))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "test/f1=" in output and "starts from the SAM weights, NOT from stage 1" in output
    assert "RANDOM weights" in output


def test_library_stage2_without_init_ckpt_stops(data_dir, tmp_path):
    """The same refusal through `rootseg.tasks.fit.train` and the module itself; a stage 1 run never asks."""
    from rootseg.tasks.fit import train

    cfg = compose_run("train", small(data_dir, "+experiment=rootsam_stage2", "debug=fdr"), tmp_path / "run")
    with pytest.raises(ValueError, match=r"model\.init_ckpt=<stage 1 run>/checkpoints/last\.ckpt"):
        train(cfg)
    assert not list((tmp_path / "run").rglob("*.ckpt"))
    module = hydra.utils.instantiate(cfg.model)
    with pytest.raises(ValueError, match=r"model\.allow_raw_sam=true"):
        module.setup("fit")
    module.setup("test")  # scoring a model needs no stage 1
    stage1 = compose_run("train", small(data_dir, "+experiment=rootsam_stage1"), tmp_path / "stage1")
    hydra.utils.instantiate(stage1.model).setup("fit")


# ---------------------------------------------------------------------------------------------- cache, predict
def test_embedding_cache_gives_the_same_loss(stage1, tmp_path):
    module = stage1.module.eval()
    datamodule = stage1.trainer.datamodule
    batch = next(iter(torch.utils.data.DataLoader(datamodule.eval_dataset("val"), batch_size=2)))
    module.embedding_cache = None
    with torch.no_grad():
        plain = module._step(batch, "val")[0].terms["loss"]
        cache = module.enable_embedding_cache(tmp_path / "cache")
        first = module._step(batch, "val")[0].terms["loss"]  # misses: encodes and stores
        assert len(list(cache.directory.rglob("meta.json"))) == 2
        second = module._step(batch, "val")[0].terms["loss"]  # hits: fp16 features from disk
    module.embedding_cache = None
    assert first == pytest.approx(float(plain), rel=1e-6)
    assert second == pytest.approx(float(plain), rel=2e-2)


def test_correction_clicks_add_a_decoder_pass(stage1):
    module = stage1.module.eval()
    batch = next(iter(torch.utils.data.DataLoader(stage1.trainer.datamodule.eval_dataset("val"), batch_size=2)))
    n = int(batch["valid"].sum(1).max())
    calls = []
    decode = module.net.decode

    def counting_decode(embeddings, coords, labels, *args, **kwargs):
        calls.append(coords.shape)
        return decode(embeddings, coords, labels, *args, **kwargs)

    module.net.decode = counting_decode
    try:
        module.correction_clicks = 2
        with torch.no_grad():
            terms = module._step(batch, "train")[0].terms
    finally:
        module.correction_clicks = 0
        del module.net.decode
    assert [shape[1:3] for shape in calls] == [(n, 1), (n, 2), (n, 3)]
    assert torch.isfinite(terms["loss"])


def whole_image(module, image, clicks=None, device="cpu", proposer=None, **settings) -> torch.Tensor:
    """RootSAM's prompt-free (or clicked) prediction of a whole image, as eval and predict make it."""
    inference = RootSAMInference(module, InferenceSettings(**settings), torch.device(device), proposer)
    with torch.no_grad():
        return torch.from_numpy(inference(np.asarray(image), clicks))


def _record_decoded_clicks(module, monkeypatch) -> list[np.ndarray]:
    """Patch the module's decoder to record the clicks of each call ([n, 2] (x, y) in tile pixels)."""
    calls: list[np.ndarray] = []
    decode = module.net.decode

    def recording(embeddings, coords, labels, *args, **kwargs):
        assert coords.shape[0] == 1 and coords.shape[2] == 1 and bool((labels == 1).all())  # one positive click
        calls.append(coords[0, :, 0].cpu().numpy().copy())
        return decode(embeddings, coords, labels, *args, **kwargs)

    monkeypatch.setattr(module.net, "decode", recording)
    return calls


def test_prompt_free_prediction_of_a_whole_image(stage1, monkeypatch):
    """Prompts decide the prediction: the grid, the clicks given, or points on a U-Net map's skeleton."""
    module = stage1.module.eval()
    assert (module.resize, module.tile, module.grid_points_per_side) == (256, 128, 4)
    height, width = 180, 300  # resized to 256 x 256: four 128 px tiles, origins (x, y) in row order
    image = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    calls = _record_decoded_clicks(module, monkeypatch)

    grid = whole_image(module, image, min_predicted_iou=0.0, min_stability=0.0)  # unfiltered: every click counts
    centres = (np.arange(4) + 0.5) * 128 / 4  # SAM's point grid: cell centres 16, 48, 80, 112
    expected_grid = np.array([(x, y) for y in centres for x in centres], np.float32)
    assert len(calls) == 4 and all(np.array_equal(c, expected_grid) for c in calls)

    calls.clear()
    clicks = np.array([[10.0, 20.0], [250.0, 90.0]])
    clicked = whole_image(module, image, clicks)
    # in the 256 x 256 frame: (10 * 256/300, 20 * 256/180) in tile (0, 0); (250 * 256/300, 128) in tile
    # (128, 128), whose origin is subtracted; the two tiles without a click are never decoded
    sx, sy = 256 / width, 256 / height
    assert len(calls) == 2
    np.testing.assert_allclose(calls[0], [[10 * sx, 20 * sy]], rtol=1e-5)
    np.testing.assert_allclose(calls[1], [[250 * sx - 128, 90 * sy - 128]], rtol=1e-5, atol=1e-4)
    # so the image's top-right quarter (tile (128, 0), no click) is 0 with clicks, not with the grid
    quarter = (slice(0, 80), slice(160, 300))
    assert float(clicked[quarter].abs().max()) == 0.0 and float(grid[quarter].min()) > 0.0
    assert not torch.allclose(clicked, grid)

    calls.clear()
    unet_map = np.zeros((height, width), np.float32)
    unet_map[59:62, 20:281] = 0.9  # one horizontal root along row 60
    from_map = whole_image(module, image, proposer=SimpleNamespace(probabilities=lambda image: unet_map))
    # the root crosses tiles (0, 0) and (128, 0) only: two decodes, every click on the root's skeleton
    assert len(calls) == 2 and all(1 <= len(c) <= 16 for c in calls)
    for origin_x, tile_clicks in zip((0, 128), calls):
        x_image = (tile_clicks[:, 0] + origin_x) / sx
        y_image = tile_clicks[:, 1] / sy
        assert np.all(np.abs(y_image - 60) <= 1.5), y_image
        assert np.all((x_image >= 18) & (x_image <= 282)), x_image
    for probs in (grid, clicked, from_map):
        assert probs.shape == (height, width) and probs.dtype == torch.float32
        assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0


def test_rootsam_prediction_falls_back_to_the_cpu_on_out_of_memory(stage1, monkeypatch):
    """As the U-Net's sliding window: "meta" stands in for a GPU whose encoder runs out of memory."""
    module = stage1.module.eval()
    image = np.random.default_rng(3).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    expected = whole_image(module, image)
    devices, moves = [], []
    encode, to = module.net.encode, module.to

    def fussy_encode(images):
        devices.append(images.device.type)
        if images.device.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return encode(images)

    def recording_to(*args, **kwargs):
        moves.append(torch.device(args[0]))
        return to(*args, **kwargs)

    monkeypatch.setattr(module.net, "encode", fussy_encode)
    monkeypatch.setattr(module, "to", recording_to)
    with pytest.warns(RuntimeWarning, match="out of memory on meta.*on the CPU"):
        probs = whole_image(module, image, device="meta")
    torch.testing.assert_close(probs, expected, rtol=0, atol=0)
    assert devices == ["meta"] + ["cpu"] * 4  # the failed tile again on the CPU, then the other three
    assert moves == [torch.device("cpu"), torch.device("cpu")]  # to the CPU, then back where it was

    def always(images):
        raise torch.cuda.OutOfMemoryError("fake")

    monkeypatch.setattr(module.net, "encode", always)
    with pytest.raises(torch.OutOfMemoryError):  # out of memory on the CPU itself is not hidden
        whole_image(module, image)


def test_patch_scores_are_the_evaluations_and_skip_empty_tiles(stage1):
    """Training-time patch metrics use rootseg.metrics' definition: a tile empty in truth and prediction
    has no IoU or Dice (NaN) and does not count in the mean."""
    from rootseg.tasks.rootsam import patch_scores

    module = stage1.module
    target = torch.zeros(3, 8, 8, dtype=torch.uint8)
    probs = torch.zeros(3, 8, 8)
    # tile 0: empty in both; tile 1: 10 root pixels, 5 of them predicted plus 5 false positives;
    # tile 2: 4 root pixels, all predicted, and 8 unlabelled pixels predicted as root (ignored)
    target[1, 0, :8], target[1, 1, :2] = 1, 1
    probs[1, 0, :5], probs[1, 5, :5] = 0.9, 0.7
    target[2, 3, 2:6] = 1
    target[2, 6:, :4] = 255
    probs[2, 3, 2:6], probs[2, 6:, :4] = 0.8, 0.95
    scores = patch_scores(probs, target, threshold=0.5)
    # by hand: tile 1 tp 5, fp 5, fn 5: IoU 5/15, Dice 10/20; AP (precision x recall step, as sklearn):
    # threshold 0.9 gives precision 1 at recall 0.5, 0.7 adds no recall, 0 adds recall 0.5 at precision 10/64
    ap_1 = 0.5 * 1 + 0.5 * 10 / 64
    assert torch.isnan(scores["iou"][0]) and torch.isnan(scores["dice"][0]) and torch.isnan(scores["ap"][0])
    torch.testing.assert_close(scores["iou"][1:], torch.tensor([5 / 15, 1.0], dtype=torch.float64))
    torch.testing.assert_close(scores["dice"][1:], torch.tensor([10 / 20, 1.0], dtype=torch.float64))
    torch.testing.assert_close(scores["ap"][1:], torch.tensor([ap_1, 1.0], dtype=torch.float64))

    for metric in module.patch_metrics.values():
        metric.reset()
    updated = module.update_patch_metrics("val", probs, target)
    assert updated == ["patch_miou", "patch_dice", "patch_map"]
    means = {name: float(module.patch_metrics[f"val_{name}"].compute()) for name in updated}
    assert means["patch_miou"] == pytest.approx((5 / 15 + 1) / 2)  # not (1 + 5/15 + 1) / 3
    assert means["patch_dice"] == pytest.approx((0.5 + 1) / 2)
    assert means["patch_map"] == pytest.approx((ap_1 + 1) / 2)
    for metric in module.patch_metrics.values():
        metric.reset()
    assert module.update_patch_metrics("val", probs[:1], target[:1]) == []  # nothing to score


def test_a_unet_checkpoint_proposes_the_clicks(stage1, tiny_checkpoint, monkeypatch):
    """`prompt_ckpt=` (eval, predict): RootSAM's prompt-free clicks come from the U-Net's probability map."""
    from rootseg.synthetic.generator import generate_sample

    predictor = Predictor.from_checkpoint(stage1.ckpt, InferenceSettings(prompt_ckpt=str(tiny_checkpoint)))
    module = predictor.module
    image = generate_sample(3, size=(200, 240)).image
    assert predictor.proposer is not None and predictor.proposer.kind == "unet"
    unet_probs = predictor.proposer.probabilities(image)
    assert (unet_probs > 0.5).mean() > 0.005  # the U-Net sees roots to put clicks on

    calls = _record_decoded_clicks(module, monkeypatch)
    proposed = torch.from_numpy(predictor.probabilities(image))
    proposed_calls = [c.copy() for c in calls]
    calls.clear()
    by_hand = whole_image(module, image, proposer=SimpleNamespace(probabilities=lambda image: unet_probs))
    torch.testing.assert_close(proposed, by_hand, rtol=0, atol=0)
    assert len(proposed_calls) == len(calls) and all(np.array_equal(a, b) for a, b in zip(proposed_calls, calls))
    centres = (np.arange(4) + 0.5) * 128 / 4
    grid = np.array([(x, y) for y in centres for x in centres], np.float32)
    assert proposed_calls and not any(np.array_equal(c, grid) for c in proposed_calls)  # not the grid

    with pytest.raises(ValueError, match="give a U-Net"):
        Predictor.from_checkpoint(stage1.ckpt, InferenceSettings(prompt_ckpt=str(stage1.ckpt)))
    with pytest.raises(ValueError, match="is a 'unet' model"):
        Predictor.from_checkpoint(tiny_checkpoint, InferenceSettings(prompt_ckpt=str(tiny_checkpoint)))


def test_click_grid_override_sets_how_many_clicks_each_tile_gets(stage1, tiny_checkpoint, monkeypatch):
    """`grid_points_per_side=` (eval, predict): an n x n grid of clicks per tile, at SAM's cell centres."""
    module = load_module(stage1.ckpt)
    image = np.random.default_rng(2).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    assert Predictor(module).impl.points_per_side == 4  # null: the checkpoint's own
    predictor = Predictor(module, InferenceSettings(grid_points_per_side=2))
    calls = _record_decoded_clicks(module, monkeypatch)
    predictor.probabilities(image)
    centres = (np.arange(2) + 0.5) * 128 / 2  # 32, 96 in a 128 px tile
    expected = np.array([(x, y) for y in centres for x in centres], np.float32)
    assert len(calls) == 4 and all(np.array_equal(c, expected) for c in calls)
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="whole number >= 1"):
            InferenceSettings(grid_points_per_side=bad)
    with pytest.raises(ValueError, match="grid_points_per_side=8: a unet model cannot honour"):
        Predictor(load_module(tiny_checkpoint), InferenceSettings(grid_points_per_side=8))


def test_cache_embeddings_flag_attaches_the_cache_and_a_second_pass_encodes_nothing(tmp_path, data_dir, sam_file):
    """`data.cache_embeddings=true` as a user sets it: the data module's flag reaches the module at fit, and
    validating the same tiles again reads every embedding from `data.cache_dir` instead of the encoder."""
    cache_dir = tmp_path / "embeddings"
    overrides = small(
        data_dir,
        "+experiment=rootsam_stage1",
        f"model.net.ckpt_path={sam_file}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.num_sanity_val_steps=0",
        "data.cache_embeddings=true",
        f"data.cache_dir={cache_dir}",
    )
    cfg = compose_run("train", overrides, tmp_path / "run")
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[], logger=False, enable_checkpointing=False)
    encoded: list[int] = []
    encode = module.net.encode
    module.net.encode = lambda images: (encoded.append(len(images)), encode(images))[1]
    trainer.fit(module, datamodule=datamodule)
    assert module.embedding_cache is not None and module.embedding_cache.root == cache_dir
    stored = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert stored and sum(encoded) > 0
    encoded.clear()
    trainer.validate(module, datamodule=datamodule)
    assert encoded == []  # every validation tile came from the cache


def test_a_real_rootsam_checkpoint_through_rootseg_predict(stage1, compose, tmp_path):
    """`rootseg.predict` with a RootSAM checkpoint (not a stand-in): every output written, the mask equal to
    the module's own prompt-free prediction with the clicks asked for (grid_points_per_side=2)."""
    from PIL import Image

    from rootseg.inference.folder import predict
    from rootseg.synthetic.generator import generate_sample

    folder = tmp_path / "scans"
    folder.mkdir()
    image = generate_sample(4, size=(150, 210)).image
    Image.fromarray(image).save(folder / "scan.png")
    output = tmp_path / "out"
    args = [f"ckpt_path={stage1.ckpt}", f"input={folder}", f"output={output}", "grid_points_per_side=2"]
    summary = predict(compose("predict", [*args, "save_probs=npy"]))
    assert (summary["segmented"], summary["failed"]) == (1, 0)
    for name in ("scan.png", "scan_rootpainter.png", "scan_overlay.jpg", "scan_prob.npy", "results.csv"):
        assert (output / name).is_file(), name
    expected = whole_image(load_module(stage1.ckpt).eval(), image, grid_points_per_side=2).numpy()
    np.testing.assert_allclose(np.load(output / "scan_prob.npy"), expected, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(Image.open(output / "scan.png")) == 255, expected >= 0.5)
