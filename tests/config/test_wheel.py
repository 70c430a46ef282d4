"""A wheel (`pip wheel .`, installed without -e) carries the Hydra configs: conf/ travels as rootseg/conf, and
the installed package composes from it, from any directory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

#: what a build needs from the checkout (a copy, so the build leaves nothing in the working tree)
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "rootseg", "conf")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(dist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (built,) = dist.glob("rootseg-*.whl")
    return built


def test_the_wheel_holds_every_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"rootseg/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert len(expected) > 40 and "rootseg/conf/train.yaml" in expected
    assert expected <= names, sorted(expected - names)
    assert {"rootseg/conf/experiment/unet_demo.yaml", "rootseg/conf/debug/fdr.yaml"} <= names
    assert not [n for n in names if n.startswith("conf/")]  # not a top-level package of its own
    assert "rootseg/cli/train.py" in names and "rootseg/export/__main__.py" in names


def _shipped() -> dict:
    manifest = REPO / "rootseg" / "models" / "shipped" / "manifest.json"
    return json.loads(manifest.read_text())["models"] if manifest.is_file() else {}


def test_the_wheel_carries_the_shipped_models(wheel):
    """Every shipped model's weights (byte for byte: the manifest's sha256) and model card are in the wheel."""
    models = _shipped()
    if not models:
        pytest.skip("no model ships in this checkout")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    assert "rootseg/models/shipped/manifest.json" in names
    for entry in models.values():
        assert f"rootseg/models/shipped/{entry['card']}" in names
        data = archive.read(f"rootseg/models/shipped/{entry['file']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


#: run by the installed wheel's interpreter: every command's way of taking a shipped model by name
BY_NAME = """
import json, sys
from pathlib import Path
import hydra, torch
from rootseg.annotate.server import starting_checkpoint
from rootseg.config.run_config import compose_task
from rootseg.evaluation.run import evaluate
from rootseg.models import shipped
from rootseg.tasks.checkpoints import load_module
name, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
assert str(shipped.SHIPPED_DIR).startswith(sys.prefix), shipped.SHIPPED_DIR
evaluation = [f"ckpt_path={name}", "data=folder", f"data.root={data}", "split=all", "figures=0"]
result = evaluate(compose_task("eval", evaluation, out / "eval"))
train = ["model/net=unet_narrow", "data.tile_in=572", "data.tile_out=388", f"model.init_ckpt={name}"]
module = hydra.utils.instantiate(compose_task("train", train, out / "train").model)
module.setup("fit")
same = all(torch.equal(module.state_dict()[k], v) for k, v in load_module(name).state_dict().items())
annotate = compose_task("annotate", [f"project={out}"], out / "annotate")
print(json.dumps({"eval_threshold": result["threshold"], "f1": result["pooled"]["f1"], "init_same": same,
                  "annotate_start": starting_checkpoint(annotate)}))
"""


@pytest.mark.slow
def test_installed_wheel_uses_a_shipped_model_by_name(wheel, tmp_path):
    """From the installed wheel, in a folder with no checkout: list, predict, eval, fine-tune start and the
    annotate app's starting point, each with the shipped model's name."""
    from rootseg.synthetic.dataset import write_dataset

    models = _shipped()
    if not models:
        pytest.skip("no model ships in this checkout")
    name, entry = next(iter(models.items()))
    python = _install(wheel, tmp_path / "venv")
    data = write_dataset(tmp_path / "data", n=3, size=(400, 440), seed=3)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="offline", OMP_NUM_THREADS="2")

    def run(*argv: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(python), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    assert f"{name}: " in run("-m", "rootseg.models").stdout
    run("-m", "rootseg.predict", f"ckpt_path={name}", f"input={data / 'images'}", f"output={tmp_path / 'masks'}")
    from PIL import Image

    masks = [tmp_path / "masks" / f"{image.stem}.png" for image in sorted((data / "images").iterdir())]
    assert len(masks) == 3 and all(Image.open(m).size == (440, 400) for m in masks)
    (tmp_path / "project").mkdir()
    figures = json.loads(run("-c", BY_NAME, name, str(data), str(tmp_path / "project")).stdout.strip().splitlines()[-1])
    assert figures["eval_threshold"] == entry["threshold"] and 0 <= figures["f1"] <= 1
    assert figures["init_same"] and figures["annotate_start"] == name


def test_config_dir_prefers_the_packaged_configs(tmp_path, monkeypatch):
    import rootseg.config.run_config as run_config

    assert Path(run_config.CONFIG_DIR) == REPO / "conf"  # a checkout: the top-level conf/
    installed = tmp_path / "site-packages" / "rootseg"
    (installed / "config").mkdir(parents=True)
    (installed / "conf").mkdir()
    (installed / "conf" / "train.yaml").write_text("seed: 1\n")
    monkeypatch.setattr(run_config, "__file__", str(installed / "config" / "run_config.py"))
    assert run_config._config_dir() == str(installed / "conf")


def _install(wheel: Path, where: Path) -> Path:
    """A fresh venv with the wheel installed (not editable); torch and the other dependencies come from this
    interpreter's site-packages through a .pth line (nothing is downloaded, and no editable finder is loaded)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "rootseg_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    return python


@pytest.mark.slow
def test_installed_wheel_trains_the_demo_from_another_directory(wheel, tmp_path):
    """~55 s on a loaded machine: the README's first command, `python -m rootseg.train +experiment=unet_demo
    debug=fdr`, run by the installed package in a folder with no checkout."""
    python = _install(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="offline", OMP_NUM_THREADS="2")
    where = subprocess.run(
        [str(python), "-c", "import rootseg.config.run_config as r; print(r.__file__); print(r.CONFIG_DIR)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert all(path.startswith(str(tmp_path / "venv")) for path in where), where
    command = ["-m", "rootseg.train", "+experiment=unet_demo", "debug=fdr"]
    command += ["data.source.n=6", "data.source.size=[160,160]"]  # a smaller synthetic set than the demo's
    run = subprocess.run([str(python), *command], cwd=elsewhere, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "test/f1=" in run.stdout and "run directory:" in run.stdout
    assert list((elsewhere / "logs" / "train" / "runs").glob("*/config_resolved.yaml"))
