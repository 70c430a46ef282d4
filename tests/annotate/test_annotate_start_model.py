"""A project with no model yet starts from the shipped model (`start_model`, conf/annotate.yaml)."""

from __future__ import annotations

from annotate_fixtures import annotate_config, make_project, unet_ckpt_fixture  # noqa: F401
from conftest import REPO, SHIPPED_NAME, SHIPPED_THRESHOLD
from omegaconf import OmegaConf

from rootseg.annotate.server import build
from rootseg.models import shipped


def test_a_project_without_a_model_starts_from_the_shipped_one(shipped_here, compose, tmp_path):
    project = make_project(tmp_path)
    _, service, _ = build(annotate_config(compose, project, f"start_model={SHIPPED_NAME}"))
    assert service.model.path == shipped_here / f"{SHIPPED_NAME}.ckpt"
    assert service.threshold == SHIPPED_THRESHOLD  # the shipped model's own threshold
    _, service, _ = build(annotate_config(compose, project, "start_model=null"))
    assert service.model is None


def test_a_given_checkpoint_wins_and_may_be_a_shipped_name(shipped_here, compose, tmp_path, unet_ckpt):
    project = make_project(tmp_path)
    _, service, _ = build(annotate_config(compose, project, f"ckpt_path={unet_ckpt}", f"start_model={SHIPPED_NAME}"))
    assert service.model.path == unet_ckpt.resolve()
    _, service, _ = build(annotate_config(compose, project, f"ckpt_path={SHIPPED_NAME}"))
    assert service.model.path == shipped_here / f"{SHIPPED_NAME}.ckpt"


def test_the_default_start_model_is_a_shipped_one():
    default = OmegaConf.load(REPO / "conf" / "annotate.yaml").start_model
    models = shipped.shipped_models()
    assert default in models or not models  # a checkout before any model ships annotates without one


def test_with_no_model_shipped_it_annotates_without_one(compose, tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "empty")
    project = make_project(tmp_path)
    _, service, _ = build(compose("annotate", [f"project='{project}'"]))  # the default start_model
    assert service.model is None
