"""Shared fixtures: Hydra config composition, the real SegRoot folder, small synthetic pairs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test` runs two workers), each worker and the commands it starts get their
    share of the cores: two workers of two torch threads each on two cores run slower than one."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


REPO = Path(__file__).resolve().parents[1]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"
# the benchmarks' modules the tests share (the bad-input corpus): benchmarks import nothing from tests
sys.path.insert(0, str(REPO / "benchmarks"))


def child_env(tests_importable: bool = False, **extra: str) -> dict[str, str]:
    """The environment of every `python -m rootseg...` child process a test starts: this checkout's rootseg
    first on the path (not an installed one), W&B offline, no albumentations update check; `extra` on top.
    `tests_importable`: tests/ on the path too, for a `_target_` from it (faulty_loss, probes)."""
    folders = [str(REPO / "tests")] if tests_importable else []
    path = os.pathsep.join([*folders, str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    base = {"PYTHONPATH": path, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    return {**os.environ, **base, **extra}


def run_rootseg(
    command: str, args: list[str], timeout: float = 300, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """`python -m rootseg.<command> *args` from the repository in a child process, output captured as text;
    with `check`, a non-zero exit fails the test with the output's tail."""
    run = subprocess.run(
        [sys.executable, "-m", f"rootseg.{command}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or child_env(),
    )
    if check:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run


def kill_and_resume(args: list[str], work: Path, env: dict[str, str], seed: int, timeout: float = 300) -> int:
    """The kill-and-resume experiment of rootseg.train `args` (3 epochs): an uninterrupted run in work/whole, a
    repeat in work/killed SIGKILLed at a point drawn from `seed` after its first checkpoint
    (probes.kill_overrides; `env` must make tests/ importable), then that run resumed with ckpt_path=last.
    Returns the epoch (0-based) of the checkpoint the resumed run started from."""
    from probes import kill_overrides

    def start(run_dir: Path, *extra: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "rootseg.train", *args, *extra, f"hydra.run.dir={run_dir}"]
        output = open(work / f"{run_dir.name}.out", "wb")  # noqa: SIM115 (the child writes it)
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)

    whole, killed = work / "whole", work / "killed"
    assert start(whole).wait(timeout=timeout) == 0, (work / "whole.out").read_text()[-3000:]
    process = start(killed, *kill_overrides(whole, 3, seed))
    assert process.wait(timeout=timeout) == -signal.SIGKILL, (work / "killed.out").read_text()[-3000:]
    last = torch.load(killed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    epoch = int(last["epoch"])
    print(f"at the kill last.ckpt held epoch {epoch} (0-based): the run resumes at epoch {epoch + 1}")
    run_rootseg("train", [*args, f"hydra.run.dir={killed}", "ckpt_path=last"], timeout=timeout, env=env)
    return epoch


def fake_ddp_trainer(rank: int, world: int = 2) -> SimpleNamespace:
    """What the data modules and Lightning's _DataConnector read of a trainer on `rank` of a DDP run."""
    from lightning.pytorch.trainer.states import TrainerFn

    return SimpleNamespace(
        world_size=world,
        global_rank=rank,
        current_epoch=0,
        overfit_batches=0,
        distributed_sampler_kwargs={"num_replicas": world, "rank": rank},
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=True, is_distributed=True),
        state=SimpleNamespace(fn=TrainerFn.FITTING),
    )


@pytest.fixture
def clean_hydra():
    """sam2's import initialises Hydra's global state; composing afterwards needs it cleared."""
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


@pytest.fixture
def compose(clean_hydra):
    """compose(config_name, overrides) -> DictConfig with hydra's runtime keys filled (for `paths`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from rootseg.config.run_config import CONFIG_DIR

    def _compose(config_name: str = "train", overrides: list[str] | None = None):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides or [], return_hydra_config=True)

    return _compose


@pytest.fixture
def segroot() -> Path:
    if not (SEGROOT / "split.json").is_file():
        pytest.skip(f"real SegRoot data not found at {SEGROOT}")
    return SEGROOT


def draw_lines_pair(size: tuple[int, int] = (96, 128), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tiny image with bright lines on dark noise and its exact mask."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    for _ in range(3):
        p0 = (int(rng.integers(0, w)), 0)
        p1 = (int(rng.integers(0, w)), h - 1)
        cv2.line(mask, p0, p1, 1, thickness=int(rng.integers(3, 7)))
    image = rng.normal(60, 15, (h, w, 3)).clip(0, 255)
    image[mask == 1] = 200
    return image.astype(np.uint8), mask


def compose_run(config_name: str, overrides: list[str], run_dir: Path):
    """Compose a task config as the command line would, with the run directory set (in-process runs)."""
    from rootseg.config.run_config import compose_task

    return compose_task(config_name, overrides, run_dir)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic set (12 images of 192 x 160) shared by the tests that train or predict."""
    from rootseg.synthetic.dataset import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synthetic") / "set", n=12, size=(192, 160), seed=5)


TINY_TRAIN = [
    "+experiment=unet_demo",
    "debug=limit",
    "trainer.max_epochs=2",
    "data.max_tiles_per_image=2",
    "data.batch_size=4",
    "data=folder",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synthetic_dir) -> dict:
    """The metrics `rootseg.tasks.fit.train` returns for unet_tiny trained two short epochs on the small synthetic
    set, validated and tested on whole splits (so `val/f1` and `test/f1` cover what eval scores)."""
    from rootseg.tasks.fit import train

    run_dir = tmp_path_factory.mktemp("tiny_run")
    whole_splits = ["trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0"]
    cfg = compose_run("train", [*TINY_TRAIN, *whole_splits, f"data.root={synthetic_dir}", "logger=csv"], run_dir)
    with torch_threads(1):  # one thread: float32 sums independent of batch size, so eval can repeat its scores
        return train(cfg)


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op threads set to `threads` for the block. With several threads a convolution's float32
    sums depend on the batch it runs in, so the same tile scored in another batch can cross the threshold; with
    one they do not."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """The best checkpoint of `tiny_run`."""
    path = Path(tiny_run["best_checkpoint"])
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of micro-SAM tests (their small tensors run slower on two), and Hydra's
    global state cleared afterwards (importing sam2 initialises it)."""
    from hydra.core.global_hydra import GlobalHydra

    with torch_threads(1):
        yield
    GlobalHydra.instance().clear()


def random_checkpoint(overrides: list[str], path: Path, seed: int = 0) -> Path:
    """A checkpoint of the train config's model with random weights, written by Lightning as rootseg.train writes
    one (seconds): for tests of what reads checkpoints, not of what training learns."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rootseg.config.run_config import CONFIG_DIR
    from rootseg.tasks.checkpoints import write_untrained

    paths = [f"paths.{key}={path.parent}" for key in ("data_dir", "output_dir", "work_dir")]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose("train", [*overrides, *paths])
    GlobalHydra.instance().clear()
    write_untrained(cfg, path, seed)
    GlobalHydra.instance().clear()  # building SAM 2.1 initialises Hydra's global state
    return path


@pytest.fixture(scope="session")
def unet_ckpt(tmp_path_factory) -> Path:
    """A unet_demo checkpoint with random weights, written by Lightning as rootseg.train would."""
    return random_checkpoint(["+experiment=unet_demo"], tmp_path_factory.mktemp("ckpt") / "last.ckpt")


def bad_inputs_benchmark():
    """benchmarks/bad_inputs.py, imported by path (benchmarks/ is not a package): its tallies are tested."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bad_inputs_benchmark", REPO / "benchmarks" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_command(command: str, overrides: list[str], run_dir: Path) -> int:
    """`python -m rootseg.<command> overrides hydra.run.dir=run_dir` in this process, through the command's console
    entry (Hydra's parsing and error hints included); returns its exit code."""
    import importlib
    import sys

    from hydra.core.global_hydra import GlobalHydra

    module = importlib.import_module(f"rootseg.cli.{'evaluate' if command == 'eval' else command}")
    argv = sys.argv
    sys.argv = [f"rootseg.{command}", *overrides, f"hydra.run.dir={run_dir}"]
    GlobalHydra.instance().clear()
    try:
        module.entry()
    except SystemExit as exit_:
        return 0 if exit_.code is None else int(exit_.code)
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    return 0


@pytest.fixture(scope="session")
def micro_rootsam_ckpt(tmp_path_factory) -> Path:
    """A RootSAM stage 1 checkpoint of the micro SAM 2.1 (random weights, resize 256, 128 px tiles), written
    through Lightning as rootseg.train writes one."""
    overrides = ["+experiment=rootsam_stage1", "model/net=sam2.1_micro", "data=synthetic", "data.resize=256"]
    return random_checkpoint([*overrides, "data.tile=128"], tmp_path_factory.mktemp("rootsam") / "rootsam.ckpt", 2)


SHIPPED_NAME, SHIPPED_THRESHOLD = "tiny-zoo", 0.35  # a threshold other than the checkpoint's own 0.5


def ship_script():
    """experiments/segroot/ship.py, the packaging script of shipped models, as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ship", REPO / "experiments" / "segroot" / "ship.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    return ship


@pytest.fixture(scope="session")
def zoo(tmp_path_factory, tiny_checkpoint) -> Path:
    """A shipped-model folder holding SHIPPED_NAME, made by experiments/segroot/ship.py from tiny_checkpoint as
    the real one is made (the threshold as if chosen on val)."""
    from rootseg.models import shipped

    ship = ship_script()
    folder = tmp_path_factory.mktemp("zoo")
    evaluation = {"best_threshold": {"threshold": SHIPPED_THRESHOLD, "f1": 0.5}, "split": "val", "n_images": 12}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shipped, "SHIPPED_DIR", folder)
        ship.ship_weights(tiny_checkpoint, evaluation, SHIPPED_NAME, "tiny")
    (folder / f"{SHIPPED_NAME}.md").write_text(f"# Model card: {SHIPPED_NAME}\n")
    return folder


@pytest.fixture
def shipped_here(zoo, monkeypatch) -> Path:
    """The shipped models are zoo's for this test."""
    from rootseg.models import shipped

    monkeypatch.setattr(shipped, "SHIPPED_DIR", zoo)
    return zoo
