"""RootSAM's prompt modes and honest validation, on the micro SAM 2.1 (random weights) in seconds:
promptless decoding (model.prompt_mode=none|mixed), negative objects, correction clicks only in training,
(seed, epoch) shuffling, unrepeated validation tiles under DDP, per-tile records for the W&B dashboard.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
import torch
from conftest import compose_run, fake_ddp_trainer
from micro_rootsam import count_decoder, micro_config, micro_module, micro_overrides

from rootseg.datamodules.rootsam import object_targets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rootsam_modes_data")


def build(data_dir: Path, tmp_path: Path, *extra: str) -> SimpleNamespace:
    cfg = micro_config(data_dir, tmp_path, *extra)
    module = micro_module(cfg)
    return SimpleNamespace(cfg=cfg, data=hydra.utils.instantiate(cfg.data), module=module)


def first_batch(datamodule, split: str, size: int = 2) -> dict:
    dataset = datamodule.train_dataset(0) if split == "train" else datamodule.eval_dataset(split)
    return next(iter(torch.utils.data.DataLoader(dataset, batch_size=size)))


# ------------------------------------------------------------------------------------------ promptless
def test_promptless_decoding_is_sam2s_decoder_given_no_prompt():
    """decode_promptless equals sam2's own prompt encoder (no points, boxes or masks) and mask decoder, its
    single-mask token, upsampled to the tile; in eval mode too (no fallback to a multimask token)."""
    from rootseg.models.rootsam import RootSAM, sam_normalize
    from rootseg.models.sam2_builder import SAM2_MICRO_OVERRIDES

    torch.manual_seed(3)
    net = RootSAM(config_name="sam2.1_hiera_t", overrides=SAM2_MICRO_OVERRIDES)
    tiles = torch.randint(0, 255, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        embeddings = net.encode(sam_normalize(tiles))
        sam = net.sam
        sparse, dense = sam.sam_prompt_encoder(points=None, boxes=None, masks=None)
        assert sparse.shape[1] == 0  # no prompt token at all
        high_res = [
            sam.sam_mask_decoder.conv_s0(embeddings["high_res_feats"][0]),
            sam.sam_mask_decoder.conv_s1(embeddings["high_res_feats"][1]),
        ]
        sam.sam_mask_decoder.train()  # sam2's forward without the eval-mode fallback
        expected = []
        for b in range(2):
            low, iou, _, _ = sam.sam_mask_decoder(
                image_embeddings=embeddings["image_embed"][b : b + 1],
                image_pe=sam.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
                repeat_image=False,
                high_res_features=[f[b : b + 1] for f in high_res],
            )
            expected.append((torch.nn.functional.interpolate(low, size=(96, 96), mode="bilinear"), iou))
        for mode in (True, False):
            net.train(mode)
            logits, iou = net.decode_promptless(embeddings)
            assert logits.shape == (2, 1, 1, 96, 96) and iou.shape == (2, 1, 1)
            for b, (low, pred_iou) in enumerate(expected):
                torch.testing.assert_close(logits[b, 0], low[0], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(iou[b, 0], pred_iou[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["points", "none", "mixed"])
def test_each_prompt_mode_trains_the_passes_it_names(mode, data_dir, tmp_path, monkeypatch):
    """points: clicks only (the paper); none: one promptless pass per tile, no click; mixed: both, the loss
    their sum, and val/ is the prompted score with val/promptless_* beside it."""
    run = build(data_dir, tmp_path, f"model.prompt_mode={mode}", "data.negative_objects=1")
    run.data.setup("fit")
    batch = first_batch(run.data, "train", size=3)
    calls = count_decoder(run.module, monkeypatch)
    prompted, promptless = run.module._step(batch, "train")
    assert (prompted is not None, promptless is not None) == (mode != "none", mode != "points")
    assert len(calls["points"]) == (0 if mode == "none" else 1)
    assert calls["none"] == ([] if mode == "points" else [3])  # one pass for the 3 tiles, one mask each
    terms = run.module._loss_terms(prompted, promptless)
    expected = sum(p.terms["loss"] for p in (prompted, promptless) if p is not None)
    torch.testing.assert_close(terms["loss"], expected)
    if promptless is not None:  # the promptless target is the whole tile: every root, unprompted too
        assert torch.equal(promptless.target, batch["mask"].long())
    names = {k for k in run.module.extra_metrics}
    assert names == ({"train_promptless", "val_promptless", "test_promptless"} if mode == "mixed" else set())


def test_prompt_mode_none_trains_and_validates_without_a_click(data_dir, tmp_path, monkeypatch):
    """`+experiment=rootsam_stage1 model.prompt_mode=none`: training, validation and test never decode a
    click, and validation also scores the tiles without root (a promptless model must leave soil empty)."""
    from rootseg.tasks.fit import train

    run = build(data_dir, tmp_path, "model.prompt_mode=none", "debug=fdr")
    assert run.data.prompt_mode == "none"  # the data module follows the model
    run.data.setup("fit")
    _, with_root, empty = run.data._split("val")
    assert len(run.data.eval_dataset("val")) == len(with_root) + len(empty)
    module = hydra.utils.instantiate(run.cfg.model)
    calls = count_decoder(module, monkeypatch)
    monkeypatch.setattr(hydra.utils, "instantiate", _returning(module, hydra.utils.instantiate))
    metrics = train(run.cfg)
    assert calls["points"] == [] and len(calls["none"]) >= 3  # train, val and test batches
    assert 0 <= metrics["test/f1"] <= 1 and "test/promptless_f1" not in metrics


def _returning(module, instantiate):
    """hydra.utils.instantiate that hands back `module` for the model config (to count its decoder calls)."""

    def patched(config, *args, **kwargs):
        if getattr(config, "_target_", "") == "rootseg.tasks.rootsam.RootSAMModule":
            return module
        return instantiate(config, *args, **kwargs)

    return patched


def test_negative_objects_are_soil_clicks_with_empty_targets(data_dir, tmp_path):
    run = build(data_dir, tmp_path, "data.negative_objects=3", "data.max_objects=2")
    run.data.setup("fit")
    dataset = run.data.train_dataset(0)
    item = dataset[0]
    assert item["coords"].shape[0] == 2 + 3 and int(item["valid"].sum()) >= 3
    n_roots = int(item["objects"].max())
    negatives = torch.nonzero(item["valid"]).flatten()[n_roots:]
    assert len(negatives) == 3
    targets = object_targets(item["objects"][None], item["mask"][None], 5)[0]
    for i in negatives:
        x, y = item["coords"][i, 0].long()
        assert item["mask"][y, x] == 0 and item["labels"][i, 0] == 1  # a positive click on soil
        assert not (targets[i] == 1).any()  # whose target is empty
    assert len({tuple(item["coords"][i, 0].tolist()) for i in negatives}) == 3  # distinct clicks
    # validation and test stay the paper's protocol: clicks on roots only
    val = run.data.eval_dataset("val")[0]
    assert val["coords"].shape[0] == 2 and int(val["valid"].sum()) == int(val["objects"].max())
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="negative_objects must be a whole number >= 0"):
        build(data_dir, tmp_path, "data.negative_objects=-1")


# ------------------------------------------------------------------------------------------ honest validation
def test_correction_clicks_only_in_training(data_dir, tmp_path, monkeypatch):
    """With model.correction_clicks=2 training decodes three times per batch, validation once: its clicks come
    from the ground truth only, so val/f1 equals a run without correction clicks. corrected_metrics=true adds
    val/corrected_* (the two correction passes), never replacing val/f1."""
    run = build(data_dir, tmp_path, "model.correction_clicks=2")
    run.data.setup("fit")
    module = run.module.eval()
    calls = count_decoder(module, monkeypatch)
    with torch.no_grad():
        module._step(first_batch(run.data, "train"), "train")
        assert [shape[2] for shape in calls["points"]] == [1, 2, 3]  # clicks per object per pass
        calls["points"].clear()
        val_batch = first_batch(run.data, "val")
        honest = module._step(val_batch, "val")[0]
        assert [shape[2] for shape in calls["points"]] == [1] and honest.corrected is None
        module.correction_clicks = 0
        without = module._step(val_batch, "val")[0]
    torch.testing.assert_close(honest.probs, without.probs)

    reporting = build(data_dir, tmp_path, "model.correction_clicks=2", "model.corrected_metrics=true")
    assert set(reporting.module.extra_metrics) == {"val_corrected"}
    reporting.data.setup("fit")
    with torch.no_grad():
        out = reporting.module.eval()._step(first_batch(reporting.data, "val"), "val")[0]
    assert out.corrected is not None and not torch.equal(out.corrected, out.probs)


def test_training_order_depends_on_seed_and_epoch_only(data_dir, tmp_path):
    """The training loader's order comes from (seed, epoch), not the global RNG, so a resumed run (whose global
    RNG state differs from the uninterrupted run's) replays the same batches."""
    run = build(data_dir, tmp_path)
    run.data.setup("fit")
    run.data.trainer = SimpleNamespace(current_epoch=1, world_size=1)
    orders = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        orders.append([name for batch in run.data.train_dataloader() for name in batch["name"]])
    assert orders[0] == orders[1] and len(orders[0]) == len(set(orders[0]))
    run.data.trainer = SimpleNamespace(current_epoch=2, world_size=1)
    assert [name for batch in run.data.train_dataloader() for name in batch["name"]] != orders[0]


@pytest.mark.parametrize("world", [2, 3, 40])
def test_ddp_ranks_share_validation_tiles_without_repeats(data_dir, tmp_path, world):
    """Each rank's validation and test loader, prepared by Lightning's own code as under DDP: every tile on
    exactly one rank, none twice (Lightning's default sampler would repeat tiles to even out the ranks and
    count them twice in the synchronised metrics); more ranks than tiles leave placeholders, counted nowhere."""
    from lightning.pytorch.trainer.connectors.data_connector import _DataConnector
    from lightning.pytorch.trainer.states import RunningStage

    run = build(data_dir, tmp_path)
    for split, stage in (("val", RunningStage.VALIDATING), ("test", RunningStage.TESTING)):
        run.data.setup("fit" if split == "val" else "test")
        expected = [item["name"] for item in run.data.eval_dataset(split)]
        seen, placeholders = [], 0
        for rank in range(world):
            datamodule = hydra.utils.instantiate(run.cfg.data)
            datamodule.trainer = trainer = fake_ddp_trainer(rank, world)
            datamodule.setup("fit" if split == "val" else "test")
            loader = _DataConnector(trainer)._prepare_dataloader(
                getattr(datamodule, f"{split}_dataloader")(), shuffle=False, mode=stage
            )
            items = [loader.dataset[i] for i in loader.sampler]
            assert items, f"rank {rank} has no {split} tile: the others would wait for it"
            seen += [item["name"] for item in items if not item.get("placeholder")]
            placeholders += sum(bool(item.get("placeholder")) for item in items)
        assert sorted(seen) == sorted(expected), split
        assert placeholders == max(0, world - len(expected))


def test_placeholder_tiles_count_nowhere(data_dir, tmp_path):
    """A rank's stand-in tiles are dropped before scoring: the metrics and records equal the real tiles'."""
    from rootseg.datamodules.datasets import PaddedForRanks

    run = build(data_dir, tmp_path)
    run.data.setup("fit")
    dataset = run.data.eval_dataset("val")
    padded = PaddedForRanks(dataset, len(dataset) + 2)
    loader = torch.utils.data.DataLoader(padded, batch_size=len(padded))
    module = run.module.eval()
    module.keep_val_examples = 100
    with torch.no_grad():
        module.validation_step(next(iter(loader)), 0)
    names = [record["name"] for record in module.val_records]
    assert names == [item["name"] for item in dataset]
    assert len(module.val_examples) == len(dataset)


def test_validation_fills_the_dashboards_records_and_overlays(data_dir, tmp_path):
    """RootSAM's validation records each tile (name, confusion counts of its scored probabilities) and keeps
    the first tiles' image, prediction and target, which the W&B dashboard turns into its per-image table and
    its overlays (rootseg.figures.overlay)."""
    from rootseg.figures.overlay import overlay
    from rootseg.tasks.metrics import confusion_counts

    run = build(data_dir, tmp_path)
    run.data.setup("fit")
    module = run.module.eval()
    module.on_validation_epoch_start()
    module.keep_val_examples = 2
    batch = first_batch(run.data, "val", size=3)
    with torch.no_grad():
        module.validation_step(batch, 0)
        main = module._step(batch, "val")[0]
    assert [r["name"] for r in module.val_records] == list(batch["name"])
    for record, probs, target in zip(module.val_records, main.probs, main.target):
        assert record == {"name": record["name"], **confusion_counts(probs >= module.threshold, target)}
    assert [ex["name"] for ex in module.val_examples] == list(batch["name"][:2])
    example = module.val_examples[0]
    assert example["image"].shape == (128, 128, 3) and example["image"].dtype == np.uint8
    picture = overlay(example["image"], example["pred"], example["target"])
    assert picture.shape == (128, 128, 3)


@pytest.mark.parametrize(
    ("experiment", "grid"), [("rootsam_promptless_stage1", (2560, 512)), ("rootsam_promptless_stage2", (2048, 1024))]
)
def test_promptless_experiments_compose(compose, experiment, grid):
    cfg = compose("train", [f"+experiment={experiment}", "data=segroot"])
    assert (cfg.model.prompt_mode, cfg.data.prompt_mode) == ("mixed", "mixed")
    assert (cfg.data.resize, cfg.data.tile) == grid and cfg.data.negative_objects > 0
    assert cfg.callbacks.model_checkpoint.monitor == cfg.optimized_metric == "val/promptless_f1"
    assert cfg.model.expect_init_ckpt is (experiment.endswith("stage2"))


def test_promptless_experiment_runs_and_keeps_its_best_promptless_checkpoint(data_dir, tmp_path):
    from rootseg.tasks.fit import train

    overrides = micro_overrides(data_dir, "debug=limit", "trainer.max_epochs=1", "trainer.limit_train_batches=1")
    overrides[0] = "+experiment=rootsam_promptless_stage1"
    metrics = train(compose_run("train", overrides, tmp_path))
    assert "promptless_f1_" in Path(metrics["best_checkpoint"]).name
    assert 0 <= metrics["test/promptless_f1"] <= 1 and 0 <= metrics["test/f1"] <= 1
