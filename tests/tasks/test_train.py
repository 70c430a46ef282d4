"""The training entry point end to end on CPU, in-process and as users run it."""

import subprocess
import sys

import pandas as pd
import pytest
import torch
from conftest import REPO, TINY_TRAIN, child_env, compose_run, run_rootseg
from probes import KeepTestRecords, pooled_f1

from rootseg.tasks.checkpoints import CheckpointLoadError, load_module


def test_cli_fast_dev_run_of_the_demo_experiment(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.train",
            "+experiment=unet_demo",
            "debug=fdr",
            "data.source.n=6",
            "data.source.size=[160,160]",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(OMP_NUM_THREADS="2"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "run directory:" in run.stdout and "test/f1=" in run.stdout
    assert (tmp_path / "run" / "config_resolved.yaml").is_file()
    assert len(list((tmp_path / "data" / "synthetic").glob("*/images/*.png"))) == 6


def test_training_writes_checkpoints_logs_and_metrics(tiny_checkpoint):
    run_dir = tiny_checkpoint.parents[1]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    logged = pd.read_csv(run_dir / "csv" / "metrics.csv")
    assert {"train/loss_epoch", "val/f1", "test/f1"} <= set(logged.columns)
    assert logged["val/f1"].notna().sum() == 2  # one validation per epoch


def test_checkpoint_rebuilds_the_model_alone(tiny_checkpoint):
    module = load_module(tiny_checkpoint)
    assert module.kind == "unet" and module.tile_out == module.net.output_size(module.tile_in)
    state = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key])
    with pytest.raises(CheckpointLoadError, match="wrong model type|needs a 'rootsam'"):
        load_module(tiny_checkpoint, expected_kind="rootsam")


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(CheckpointLoadError, match="not found"):
        load_module(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointLoadError, match="not a readable"):
        load_module(tmp_path / "junk.ckpt")
    torch.save({"model": {}}, tmp_path / "sam.pt")
    with pytest.raises(CheckpointLoadError, match="model.net.ckpt_path"):
        load_module(tmp_path / "sam.pt")


def test_same_seed_gives_the_same_metrics(tmp_path, synthetic_dir):
    from rootseg.tasks.fit import train

    overrides = [
        *TINY_TRAIN,
        f"data.root={synthetic_dir}",
        "trainer.max_epochs=1",
        "logger=csv",
        "trainer.deterministic=true",
    ]
    first = train(compose_run("train", overrides, tmp_path / "a"))
    second = train(compose_run("train", overrides, tmp_path / "b"))
    assert first["test/f1"] == pytest.approx(second["test/f1"], abs=1e-6)
    assert first["val/f1"] == pytest.approx(second["val/f1"], abs=1e-6)


def test_last_checkpoint_is_every_epoch_even_without_a_new_best(tmp_path, synthetic_dir):
    """With lr 0 val/f1 never improves after epoch 0, so no new best is saved; last.ckpt (what ckpt_path=last
    resumes from) must still be the end of the final epoch, and validation every second epoch must not matter."""
    import torch

    from rootseg.tasks.fit import train

    overrides = [
        *TINY_TRAIN,
        f"data.root={synthetic_dir}",
        "trainer.max_epochs=3",
        "trainer.check_val_every_n_epoch=2",
        "model.optimizer.lr=0.0",
        "model.optimizer.weight_decay=0.0",
        "test=false",
    ]
    train(compose_run("train", overrides, tmp_path))
    folder = tmp_path / "checkpoints"
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2 and last["optimizer_states"] and last["lr_schedulers"] is not None
    best = [p for p in folder.glob("epoch_*.ckpt")]
    assert len(best) == 1 and best[0].name.startswith("epoch_001")  # the one validated epoch


@pytest.mark.realdata
def test_fast_dev_run_on_real_segroot_images(tmp_path, segroot):
    """The paper's experiment on the real images, with the tiny net so it fits the fast suite."""
    from rootseg.tasks.fit import train

    cfg = compose_run(
        "train",
        [
            "+experiment=unet_smith2020",
            "data=segroot",
            f"data.root={segroot}",
            "debug=fdr",
            "model/net=unet_tiny",
            "data.tile_in=276",
            "data.tile_out=188",
            "logger=csv",
            "+callbacks.records._target_=probes.KeepTestRecords",
        ],
        tmp_path,
    )
    metrics = train(cfg)
    # the logged test/f1 (pooled counts, summed across ranks) is the F1 of the per-image confusion counts, summed
    assert len(KeepTestRecords.records) == 1  # fast_dev_run: one test image
    assert metrics["test/f1"] == pytest.approx(pooled_f1(KeepTestRecords.records), abs=1e-6)


@pytest.mark.slow
@pytest.mark.realdata
def test_smith2020_fast_dev_run_on_real_segroot_images(tmp_path, segroot):
    """As in the README: the full 31 M-parameter U-Net, one batch, one val and one test image. Validated on
    Smith's non-overlapping grid (the paper's protocol): eval's default half-tile window is 4x the tiles, about
    20 minutes for the two 2550 x 2273 scans on one CPU thread."""
    args = [
        "+experiment=unet_smith2020",
        "data=segroot",
        f"data.root={segroot}",
        "debug=fdr",
        "model.eval_step=tile",
        "model.eval_blend=constant",
        f"hydra.run.dir={tmp_path}",
    ]
    run_rootseg("train", args, timeout=3600)  # a hang guard only: ~10 min idle, far more on a loaded machine


# -- module options: non-finite loss under DDP, metric threshold, init_ckpt, channels_last, compile ----------
def _tiny_module(seed: int = 0, **kwargs):
    """unet_tiny (276 -> 188 px) in a UNetModule, as conf/model/unet.yaml builds it."""
    from functools import partial

    from rootseg.models.unet import UNet
    from rootseg.tasks.losses import DiceCELoss
    from rootseg.tasks.unet import UNetModule

    torch.manual_seed(seed)
    net = UNet(in_channels=3, num_classes=2, base_channels=8, depth=3, groups=8)
    return UNetModule(
        net=net,
        loss=DiceCELoss(ce_weight=0.3),
        optimizer=partial(torch.optim.SGD, lr=0.01),
        tile_in=276,
        tile_out=188,
        **kwargs,
    )


def _tile_batch(n: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 188, 188, generator=generator) > 0.8).long()
    return {"image": torch.rand(n, 3, 276, 276, generator=generator) - 0.5, "mask": mask}


def test_nonfinite_loss_skip_under_ddp_gives_a_zero_loss_over_every_trainable_parameter(caplog):
    """Lightning refuses None from training_step under DDP; the rank returns 0 with every trainable parameter
    in the graph (zero gradients, so DDP's all-reduce matches), and still skips metrics; one process: None."""
    from types import SimpleNamespace
    from unittest.mock import Mock

    module = _tiny_module()
    frozen = next(module.net.parameters())
    frozen.requires_grad_(False)
    module.log, module.log_dict = Mock(), Mock()
    batch = _tile_batch()
    batch["image"][1, 0, 5, 5] = float("nan")  # one bad pixel makes the loss NaN

    module._trainer = SimpleNamespace(world_size=2, global_rank=1, current_epoch=3, global_step=17)
    with caplog.at_level("WARNING", logger="rootseg.tasks.base"):
        loss = module.training_step(batch, 5)
    assert "rank 1 of 2, epoch 3, global step 17, batch 5" in caplog.text
    assert loss is not None and loss.requires_grad and loss.item() == 0.0
    loss.backward()
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and not p.grad.any() for _, p in trainable), [
        name for name, p in trainable if p.grad is None
    ]
    assert frozen.grad is None
    module.log.assert_called_once()
    assert module.log.call_args.args[0] == "train/skipped_batches"
    assert module.train_metrics["f1"].update_count == 0  # the NaN batch never reaches the metrics

    module._trainer = SimpleNamespace(world_size=1, global_rank=0, current_epoch=3, global_step=17)
    assert module.training_step(batch, 5) is None
    assert module.training_step(_tile_batch(), 6).isfinite()  # a finite loss is the loss itself


def test_validation_metrics_use_the_model_threshold():
    """val/f1 (which picks the best checkpoint) thresholds as the per-image records and eval do."""
    from unittest.mock import Mock

    from rootseg.metrics.pixels import scores

    target = torch.zeros(8, 8, dtype=torch.long)
    target[:, :3] = 1
    probs = torch.full((8, 8), 0.1)
    probs[:, :3] = 0.4  # root at 0.4: found at threshold 0.3, missed at 0.5
    probs[:2, 6:] = 0.35  # 4 false positives at 0.3
    for threshold in (0.3, 0.5):
        module = _tiny_module(threshold=threshold)
        module.predict_probs = lambda image, p=probs: p
        module.log_dict = Mock()
        module.validation_step({"image": torch.zeros(1, 8, 8, 3), "mask": target[None], "name": ["a"]}, 0)
        record = module.val_records[0]
        expected = scores(**{k: record[k] for k in ("tp", "fp", "fn", "tn")})
        computed = {k.split("/")[1]: float(v) for k, v in module.val_metrics.compute().items()}
        assert computed["f1"] == pytest.approx(expected["f1"], abs=1e-6)
        assert computed["recall"] == pytest.approx(expected["recall"], abs=1e-6)
        assert record["tp"] == (24 if threshold == 0.3 else 0)
    assert expected["f1"] == 0.0  # at 0.5 nothing is found; at 0.3 F1 = 48 / 52


def test_a_placeholder_image_counts_in_no_metric_or_record():
    """A DDP rank with no validation image of its own (more ranks than images) evaluates a placeholder: it
    logs the metrics (to take part in their synchronisation) and adds nothing to them."""
    from unittest.mock import Mock

    module = _tiny_module()
    module.predict_probs = Mock(side_effect=AssertionError("a placeholder is not evaluated"))
    module.log_dict = Mock()
    batch = {"image": torch.zeros(1, 8, 8, 3), "mask": torch.ones(1, 8, 8), "name": ["a"], "placeholder": [True]}
    module.validation_step(batch, 0)
    module.test_step(batch, 0)
    assert module.val_records == [] and module.test_records == []
    assert module.val_metrics["f1"].update_count == 0 and module.log_dict.call_count == 2
    module.predict_probs = Mock(return_value=torch.ones(8, 8))
    module.validation_step({**batch, "placeholder": [False]}, 0)
    assert len(module.val_records) == 1 and module.val_metrics["f1"].update_count == 1


def test_unet_init_ckpt_takes_the_weights_but_not_the_optimizer_or_epoch(tmp_path, synthetic_dir, tiny_checkpoint):
    import hydra
    from lightning import Callback, Trainer

    saved = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    assert saved["epoch"] >= 1 and saved["optimizer_states"][0]["state"]  # a trained run's optimizer
    seen = {}

    class Probe(Callback):
        def on_train_start(self, trainer, pl_module):
            seen["state"] = {k: v.clone() for k, v in pl_module.state_dict().items()}
            seen["epoch"], seen["step"] = trainer.current_epoch, trainer.global_step
            seen["optimizer_state"] = dict(trainer.optimizers[0].state)
            seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]

    def fit(overrides: list[str]) -> dict:
        cfg = compose_run("train", [*TINY_TRAIN, f"data.root={synthetic_dir}", *overrides], tmp_path / "run")
        model = hydra.utils.instantiate(cfg.model)
        trainer = Trainer(
            accelerator="cpu",
            max_epochs=1,
            limit_train_batches=1,
            limit_val_batches=1,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            callbacks=[Probe()],
        )
        trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data))
        return {**seen, "configured_lr": cfg.model.optimizer.lr}

    started = fit([f"model.init_ckpt={tiny_checkpoint}"])
    for key, value in saved["state_dict"].items():
        assert torch.equal(started["state"][key], value), key
    assert started["epoch"] == 0 and started["step"] == 0
    assert started["optimizer_state"] == {}
    assert started["lr"] == pytest.approx(started["configured_lr"])
    fresh = fit([])  # without init_ckpt the start is the random init, not the file's weights
    assert any(not torch.equal(fresh["state"][k], v) for k, v in saved["state_dict"].items())


def test_unet_init_ckpt_of_another_kind_or_net_says_which(tmp_path, tiny_checkpoint):
    saved = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    saved["rootseg"]["kind"] = "rootsam"
    torch.save(saved, tmp_path / "rootsam.ckpt")
    with pytest.raises(CheckpointLoadError, match="must be a 'unet' checkpoint.*'rootsam'"):
        _tiny_module(init_ckpt=str(tmp_path / "rootsam.ckpt")).setup("fit")
    from functools import partial

    from rootseg.models.unet import UNet
    from rootseg.tasks.losses import DiceCELoss
    from rootseg.tasks.unet import UNetModule

    wider = UNetModule(
        net=UNet(base_channels=16, depth=3, groups=8),
        loss=DiceCELoss(),
        optimizer=partial(torch.optim.SGD, lr=0.01),
        tile_in=276,
        tile_out=188,
        init_ckpt=str(tiny_checkpoint),
    )
    with pytest.raises(CheckpointLoadError, match="do not fit this model; use the model/net"):
        wider.setup("fit")
    # a rebuilt trained model never swaps its weights for its run's init_ckpt
    assert load_module(tiny_checkpoint)._init_loaded


def test_channels_last_gives_the_eager_outputs_and_gradients():
    """In float64, so that only the memory layout differs (fp32 kernels of either layout sum in other orders)."""
    eager, nhwc = _tiny_module().double(), _tiny_module(seed=1, channels_last=True).double()
    nhwc.load_state_dict(eager.state_dict())
    conv = next(m for m in nhwc.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = _tile_batch()
    image = batch["image"].double()
    out_eager, out_nhwc = eager(image), nhwc(image)
    assert out_nhwc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_nhwc, out_eager, atol=1e-9, rtol=1e-9)
    eager.loss(out_eager, batch["mask"]).backward()
    nhwc.loss(out_nhwc, batch["mask"]).backward()
    for (name, a), b in zip(eager.named_parameters(), nhwc.parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-9, rtol=1e-7, msg=name)


def test_compile_option_compiles_the_net_in_place(tmp_path, tiny_checkpoint):
    """model.compile=true: the net is compiled in place (lazily, at its first call), so parameters and
    checkpoint keys stay those of the eager net; a rebuilt model (eval, predict, export) runs eagerly."""
    eager, compiled = _tiny_module(), _tiny_module(compile=True)
    assert getattr(compiled.net, "_compiled_call_impl", None) is not None
    assert getattr(eager.net, "_compiled_call_impl", None) is None
    assert list(compiled.state_dict()) == list(eager.state_dict())
    saved = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    saved["rootseg"]["config"]["model"]["compile"] = True
    torch.save(saved, tmp_path / "compiled.ckpt")
    assert getattr(load_module(tmp_path / "compiled.ckpt").net, "_compiled_call_impl", None) is None


@pytest.mark.slow
def test_compile_gives_the_eager_outputs():
    """torch.compile of the tiny net on the CPU (inductor, C++): ~70 s of compilation on 2 loaded cores."""
    eager, compiled = _tiny_module(), _tiny_module(seed=1, compile=True)
    compiled.load_state_dict(eager.state_dict())
    eager.eval(), compiled.eval()
    tiles = _tile_batch()["image"]
    with torch.no_grad():
        torch.testing.assert_close(compiled.predict_tiles(tiles), eager.predict_tiles(tiles), atol=1e-5, rtol=1e-4)
