"""Every experiment composes through `+experiment=` and instantiates what it names."""

from pathlib import Path

import hydra
import pytest

from rootseg.config.run_config import CONFIG_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_experiment_is_not_in_the_defaults_list():
    text = (Path(CONFIG_DIR) / "train.yaml").read_text()
    assert "experiment" not in text.split("defaults:")[1].split("\n\n")[0]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(compose, experiment):
    cfg = compose("train", [f"+experiment={experiment}"])
    assert cfg.experiment_name == experiment
    assert "_target_" in cfg.model and "_target_" in cfg.data and "_target_" in cfg.trainer


#: what each debug config sets (conf/debug/*.yaml); an experiment is merged after it, so its max_epochs wins there
DEBUG = {
    "fdr": {"fast_dev_run": True, "max_epochs": 1, "limit_train_batches": None, "overfit_batches": None},
    "limit": {"fast_dev_run": None, "max_epochs": 3, "limit_train_batches": 3, "limit_val_batches": 2},
    "overfit": {"fast_dev_run": None, "max_epochs": 20, "overfit_batches": 2, "reload_dataloaders_every_n_epochs": 0},
}


@pytest.mark.parametrize("debug", sorted(DEBUG))
def test_debug_configs_compose(compose, debug):
    for experiment in ([], ["+experiment=unet_demo"]):
        cfg = compose("train", [*experiment, f"debug={debug}"])
        for key, value in DEBUG[debug].items():
            if experiment and key == "max_epochs":
                continue
            assert cfg.trainer.get(key) == value, (experiment, key)
    assert (cfg.callbacks.model_checkpoint is None) is (debug == "overfit")
    assert cfg.data.num_workers == 0


SHORT_RUN = [
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=4",
    "trainer.limit_test_batches=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.accumulate_grad_batches=2",
]


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_sim"])
def test_short_run_settings_are_overridable_without_plus(compose, trainer, tmp_path):
    # a user shortening a run on a slow machine types these without "+"; null means Lightning's default
    assert compose("train", ["+experiment=rootsam_stage1", f"trainer={trainer}"]).trainer.limit_train_batches is None
    cfg = compose("train", ["+experiment=rootsam_stage1", f"trainer={trainer}", *SHORT_RUN])
    lightning_trainer = hydra.utils.instantiate(
        cfg.trainer, accelerator="cpu", devices=1, strategy="auto", default_root_dir=str(tmp_path), logger=False
    )
    assert lightning_trainer.limit_train_batches == 20 and lightning_trainer.limit_test_batches == 4
    assert lightning_trainer.num_sanity_val_steps == 0 and lightning_trainer.accumulate_grad_batches == 2
    assert lightning_trainer.gradient_clip_val == 0.1  # stage 1's clipping survives


def test_unet_demo_instantiates_matching_model_and_data(compose, tmp_path):
    cfg = compose("train", ["+experiment=unet_demo", f"paths.data_dir={tmp_path}"])
    model = hydra.utils.instantiate(cfg.model)
    assert model.net.output_size(cfg.data.tile_in) == cfg.data.tile_out
    assert type(model.configure_optimizers()).__name__ == "AdamW"  # the demo's short-run optimizer
    paper = hydra.utils.instantiate(compose("train", ["+experiment=unet_smith2020"]).model)
    optimizer = paper.configure_optimizers()["optimizer"]
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.99
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 1e-5


def test_segroot_and_folder_data_configs(compose, tmp_path):
    cfg = compose("train", ["+experiment=unet_smith2020", "data=segroot"])
    assert cfg.data.source.root.endswith("datasets/segroot") and cfg.data.source.mask_suffix == "-mask"
    cfg = compose("train", ["+experiment=unet_demo", "data=folder", f"data.root={tmp_path}"])
    assert cfg.data.source.root == str(tmp_path)
    assert cfg.data.tile_in == 276  # the experiment's tiling survives a data override


def test_mismatched_tile_sizes_are_explained(compose):
    cfg = compose("train", ["+experiment=unet_demo", "data.tile_out=190"])
    with pytest.raises(Exception, match="tile_out=188"):
        hydra.utils.instantiate(cfg.model)


#: (experiment, hparams_search) pairs that must sweep: each search config's header names its experiment
SWEEPS = [("rootsam_stage1", "rootsam_optuna"), ("unet_smith2020", "unet_optuna")]


def _sweep_values(params) -> list[list[str]]:
    """Two overrides per swept key, as the sweeper would set them: the low end of each range (first choice,
    interval start) in the first list, the high end (last choice, interval end) in the second."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep

    low, high = [], []
    for override in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]):
        sweep = override.value()
        if isinstance(sweep, ChoiceSweep):
            ends = (sweep.list[0], sweep.list[-1])
        elif isinstance(sweep, IntervalSweep):
            ends = (sweep.start, sweep.end)
        else:
            raise AssertionError(f"{override.key_or_group}: unexpected sweep {sweep!r}")
        low.append(f"{override.key_or_group}={ends[0]}")
        high.append(f"{override.key_or_group}={ends[1]}")
    return [low, high]


def missing_sweep_keys(cfg) -> list[str]:
    """The keys hydra.sweeper.params sweeps that the composed config lacks (each would fail every trial)."""
    from omegaconf import OmegaConf

    absent = object()
    return [key for key in cfg.hydra.sweeper.params if OmegaConf.select(cfg, key, default=absent) is absent]


def test_every_hparams_search_config_is_checked_with_its_experiment():
    found = {p.stem: p for p in (Path(CONFIG_DIR) / "hparams_search").glob("*.yaml")}
    assert sorted(found) == sorted(search for _, search in SWEEPS)
    for experiment, search in SWEEPS:
        assert f"+experiment={experiment} hparams_search={search}" in found[search].read_text().splitlines()[1]


@pytest.mark.parametrize(("experiment", "search"), SWEEPS)
def test_hparams_search_composes_and_every_swept_key_exists(compose, experiment, search):
    """The sweep's config composes with its experiment as a multirun with the Optuna sweeper, every key in
    hydra.sweeper.params is in the composed config, and a trial's overrides at both ends of every range
    compose, land on those keys and are accepted by what they configure (the optimizer with a parameter)."""
    import torch
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    cfg = compose("train", [f"+experiment={experiment}", f"hparams_search={search}"])
    assert cfg.experiment_name == experiment and cfg.optimized_metric == "val/f1"
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert hydra.utils.get_class(cfg.hydra.sweeper._target_).__name__ == "OptunaSweeper"
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params and missing_sweep_keys(cfg) == []
    for overrides in _sweep_values(params):
        GlobalHydra.instance().clear()  # the RootSAM data module's sam2 import initialises Hydra
        trial = compose("train", [f"+experiment={experiment}", f"hparams_search={search}", *overrides])
        for override in overrides:
            key, value = override.split("=")
            assert OmegaConf.select(trial, key) == pytest.approx(float(value)), override
        targets = {key.rsplit(".", 1)[0] for key in params}
        for node in sorted(targets):  # model.optimizer, model.loss, data: built with the trial's values
            built = hydra.utils.instantiate(OmegaConf.select(trial, node))
            if node == "model.optimizer":
                optimizer = built([torch.nn.Parameter(torch.zeros(1))])
                swept = {k.rsplit(".", 1)[1] for k in params if k.startswith("model.optimizer.")}
                assert {k: optimizer.defaults[k] for k in swept} == {
                    k: pytest.approx(trial.model.optimizer[k]) for k in swept
                }


def test_a_swept_key_the_experiment_lacks_is_caught(compose):
    """unet_optuna tunes SGD's momentum; unet_demo trains with AdamW, which has none: the check names the
    key (a sweep would fail on every trial), and composing a trial's override fails as the sweeper would."""
    from hydra.errors import ConfigCompositionException

    cfg = compose("train", ["+experiment=unet_demo", "hparams_search=unet_optuna"])
    assert missing_sweep_keys(cfg) == ["model.optimizer.momentum"]
    with pytest.raises(ConfigCompositionException, match="model.optimizer.momentum"):
        compose("train", ["+experiment=unet_demo", "hparams_search=unet_optuna", "model.optimizer.momentum=0.9"])


@pytest.mark.parametrize(
    ("env", "netrc", "offline"),
    [
        ({}, None, True),  # no key anywhere: never wait on a login
        ({"WANDB_API_KEY": "k" * 40}, None, False),
        ({}, "machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n", False),  # `wandb login`
        ({}, "machine example.org\n  login a\n  password b\n", True),
        ({"WANDB_API_KEY": "k" * 40, "WANDB_MODE": "offline"}, None, True),
        ({"WANDB_MODE": "online"}, None, False),
    ],
)
def test_wandb_is_offline_unless_it_can_log_in(compose, monkeypatch, tmp_path, env, netrc, offline):
    for key in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    netrc_file = tmp_path / "netrc"
    if netrc is not None:
        netrc_file.write_text(netrc)
    monkeypatch.setenv("NETRC", str(netrc_file))
    cfg = compose("train", ["+experiment=unet_demo", "logger=wandb"])
    assert cfg.logger.wandb.offline is offline
    assert compose("train", ["+experiment=unet_demo", "logger=wandb", "logger.wandb.offline=true"]).logger.wandb.offline
