"""Every experiment composes through `+experiment=` and instantiates what it names."""

from pathlib import Path

import hydra
import pytest

from rootseg.utils.config import CONFIG_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_experiment_is_not_in_the_defaults_list():
    text = (Path(CONFIG_DIR) / "train.yaml").read_text()
    assert "experiment" not in text.split("defaults:")[1].split("\n\n")[0]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(compose, experiment):
    cfg = compose("train", [f"+experiment={experiment}"])
    assert cfg.experiment_name == experiment
    assert "_target_" in cfg.model and "_target_" in cfg.data and "_target_" in cfg.trainer


@pytest.mark.parametrize("debug", ["fdr", "limit", "overfit"])
def test_debug_configs_compose(compose, debug):
    cfg = compose("train", ["+experiment=unet_demo", f"debug={debug}"])
    assert cfg.trainer.max_epochs >= 1


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
