"""Shared pieces of the rootseg.annotate tests: a small RootPainter project, checkpoints, annotations, a client."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import child_env, random_checkpoint
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SIZES = {"scan a": (96, 128), "b": (120, 100), "c": (80, 90)}  # stem -> (height, width)
RED, GREEN = (255, 0, 0, 255), (0, 255, 0, 255)


def make_project(root: Path, sizes: dict[str, tuple[int, int]] = SIZES) -> Path:
    """<root>/sync/datasets/scans/<stem>.png and the project folder <root>/sync/projects/roots (returned)."""
    from rootseg.synthetic.generator import generate_sample

    dataset = root / "sync" / "datasets" / "scans"
    dataset.mkdir(parents=True)
    for i, (stem, (h, w)) in enumerate(sizes.items()):
        Image.fromarray(generate_sample(i, (h, w)).image).save(dataset / f"{stem}.png")
    project = root / "sync" / "projects" / "roots"
    (project / "annotations").mkdir(parents=True)
    info = {"name": "roots", "dataset": "scans", "location": "projects/roots", "file_names": []}
    info["file_names"] = [f"{stem}.png" for stem in sizes]
    (project / "roots.seg_proj").write_text(json.dumps(info))
    return project


def annotation(
    h: int, w: int, root_rows: tuple[int, int] = (10, 20), bg_rows: tuple[int, int] = (30, 40)
) -> np.ndarray:
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[slice(*root_rows)] = RED
    rgba[slice(*bg_rows)] = GREEN
    return rgba


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def unet_checkpoint(folder: Path) -> Path:
    """A unet_demo checkpoint with random weights, written by Lightning as rootseg.train would (seconds)."""
    return random_checkpoint(["+experiment=unet_demo"], folder / "unet.ckpt")


@pytest.fixture(scope="session", name="unet_ckpt")
def unet_ckpt_fixture(tmp_path_factory) -> Path:
    return unet_checkpoint(tmp_path_factory.mktemp("annotate_ckpt"))


@pytest.fixture(name="project")
def project_fixture(tmp_path) -> Path:
    return make_project(tmp_path)


def _no_start_model(overrides: tuple[str, ...]) -> list[str]:
    """Without a model unless one is asked for: the app's default start_model (the shipped one) would load and
    score every image, which these tests of other things neither need nor want to wait for."""
    return [] if any(o.startswith("start_model=") for o in overrides) else ["start_model=null"]


def annotate_config(compose, project: Path, *overrides: str):
    return compose("annotate", [f"project='{project}'", *overrides, *_no_start_model(overrides)])


def client_for(compose, project: Path, *overrides: str):
    """(TestClient at http://127.0.0.1:8642, the app) for an `annotate` config; scoring is not started."""
    from starlette.testclient import TestClient

    from rootseg.annotate.server import build

    app, _, _ = build(annotate_config(compose, project, *overrides))
    return TestClient(app, base_url="http://127.0.0.1:8642"), app


WRITE = {"X-Rootseg-Client": "1"}


def start_server(project: Path, *overrides: str, timeout: float = 90.0) -> tuple[subprocess.Popen, str]:
    """`python -m rootseg.annotate project=... port=0` in a child process; returns it and the URL it printed."""
    env = child_env()
    argv = [sys.executable, "-m", "rootseg.annotate", f"project='{project}'", "port=0", *overrides]
    argv += _no_start_model(overrides)
    argv += [f"hydra.run.dir='{project.parent / 'hydra_run'}'"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project.parent, env=env
    )
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("rootseg annotate: open "):
            return process, line.split("open ", 1)[1].strip()
    process.kill()
    raise AssertionError("the server did not start:\n" + "".join(lines))
