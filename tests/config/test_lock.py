"""requirements.lock: every dependency pyproject.toml declares is locked within its range, and the environment
the tests run in was installed from it (make install), so every machine runs the versions CI tested."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO

LOCK = REPO / "requirements.lock"


@pytest.fixture(scope="module")
def lock_tool():
    spec = importlib.util.spec_from_file_location("rootseg_lock", REPO / ".ci" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lock_covers_every_declared_dependency_within_its_range(lock_tool):
    assert lock_tool.check(LOCK, ["dev", "sweep", "slurm"]) == []
    locked = lock_tool.read_lock(LOCK)
    assert "torch" not in locked and "sam2" not in locked  # installed by the Makefile itself
    assert all(version and version[0].isdigit() for version in locked.values()), locked


def test_a_stale_lock_is_named_with_the_requirement(lock_tool, tmp_path):
    lines = LOCK.read_text().splitlines()
    missing = tmp_path / "missing.lock"
    missing.write_text("\n".join(line for line in lines if not line.lower().startswith("lightning==")) + "\n")
    assert lock_tool.check(missing, []) == ["lightning is declared in pyproject.toml but not in missing.lock"]
    old = tmp_path / "old.lock"
    old.write_text("\n".join("lightning==2.0.0" if line.lower().startswith("lightning==") else line for line in lines))
    assert lock_tool.check(old, []) == ["lightning==2.0.0 in old.lock is outside 'lightning>=2.4,<3'"]
    run = subprocess.run(
        [sys.executable, str(REPO / ".ci" / "lock.py"), "check", str(old)], capture_output=True, text=True
    )
    assert run.returncode == 1 and "run `make lock`" in run.stderr


def test_this_environment_was_installed_from_the_lock(lock_tool):
    """What `make install` does: each locked package at its locked version (a drifted environment fails here)."""
    drift = {}
    for name, version in lock_tool.read_lock(LOCK).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            drift[name] = (version, installed)
    assert drift == {}, f"locked vs installed: {drift}"
