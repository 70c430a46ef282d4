"""A wheel (`pip wheel .`, installed without -e) carries the Hydra configs: conf/ travels as rootseg/conf, and
the installed package composes from it, from any directory."""

from __future__ import annotations

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
