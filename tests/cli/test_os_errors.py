"""A full disk (ENOSPC), a read-only file system (EROFS), a file in the way (EEXIST) and Ctrl-C end every
command in one paragraph (one line for Ctrl-C) with the documented exit code, never a traceback: first each
command with its library function made to fail (in-process), then the real cases in subprocesses."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, child_env

from rootseg.cli import errors

ENV = child_env(OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")

#: command -> (module, the library function its entry calls, its arguments besides Hydra's run dir)
COMMANDS = {
    "train": ("rootseg.cli.train", "train", ["+experiment=unet_demo"]),
    "eval": ("rootseg.cli.evaluate", "evaluate", ["ckpt_path=x.ckpt"]),
    "predict": ("rootseg.cli.predict", "predict", ["ckpt_path=x.ckpt", "input=in", "output=out"]),
    "export": ("rootseg.cli.export", "export", ["ckpt_path=x.ckpt"]),
    "check": ("rootseg.cli.check", "check_source", ["data=synthetic"]),
    "report": ("rootseg.cli.report", "write_comparison", ["runs=[run_a]"]),
    "download": ("rootseg.cli.download", "fetch", ["dataset=segroot", "output=where"]),
    "synthesize": ("rootseg.cli.synthesize", "write_dataset", ["output=where"]),
    "measure": ("rootseg.cli.measure", "measure_masks", ["input=masks"]),
    "study": ("rootseg.cli.study", "run_study", ["input=results.csv"]),
}

#: errno -> what the paragraph must say
ERRORS = {
    errno.ENOSPC: "No space left on device [ENOSPC]; the disk is full: free some space or write elsewhere",
    errno.EROFS: "Read-only file system [EROFS]; that file system is read-only: write elsewhere",
    errno.EEXIST: "File exists [EEXIST]; a file is in the way: remove it or choose another name",
}


def _call(monkeypatch, tmp_path, command: str, failure: BaseException) -> int:
    """Run the command's console entry in this process with its library function raising `failure`."""
    import importlib

    from hydra.core.global_hydra import GlobalHydra

    module_name, function, arguments = COMMANDS[command]
    module = importlib.import_module(module_name)

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(module, function, fail)
    if command == "report":
        monkeypatch.setattr(module, "load_run", lambda run_dir, name: {"name": name})
    if command == "check":
        monkeypatch.setattr("hydra.utils.instantiate", lambda *a, **k: None)
    if command == "measure":
        monkeypatch.setattr(module, "find_images", lambda pattern: [])
    monkeypatch.setattr(sys, "argv", [f"rootseg.{command}", *arguments, f"hydra.run.dir={tmp_path / 'run'}"])
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exited:
        module.entry()
    GlobalHydra.instance().clear()
    return exited.value.code


@pytest.mark.parametrize("code", sorted(ERRORS), ids=[errno.errorcode[c] for c in sorted(ERRORS)])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_one_paragraph_for_a_machine_error(monkeypatch, tmp_path, capsys, command, code):
    target = tmp_path / "out" / "results.csv"
    exit_code = _call(monkeypatch, tmp_path, command, OSError(code, os.strerror(code), str(target)))
    err = capsys.readouterr().err
    assert exit_code == errors.EXIT_USER_ERROR == 2
    assert f"error: {target}: {ERRORS[code]}" in err
    assert "Traceback" not in err
    paragraph = err[err.index("error: ") :].strip().splitlines()
    assert paragraph[-1] == "(HYDRA_FULL_ERROR=1 shows the traceback)" and len(paragraph) == 2


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_ctrl_c_in_every_command_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys, command):
    assert _call(monkeypatch, tmp_path, command, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1:] == ["interrupted"]
    interrupt = KeyboardInterrupt()
    interrupt.add_note("interrupted: 3 segmented in this run; run the same command again to resume")
    assert _call(monkeypatch, tmp_path, command, interrupt) == 130
    err = capsys.readouterr().err
    assert err.count("interrupted") == 1 and err.strip().endswith("run the same command again to resume")


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path, capsys):
    assert _call(monkeypatch, tmp_path, "synthesize", KeyError("a bug")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug'" in err and "error: " not in err
    # EIO: no advice to give, so no paragraph
    assert _call(monkeypatch, tmp_path, "synthesize", OSError(errno.EIO, os.strerror(errno.EIO), "x")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "Input/output error" in err


def test_os_error_message_names_both_files_and_leaves_unknown_errors_alone():
    message = errors.os_error_message(OSError(errno.EXDEV, "Invalid cross-device link", "a", "b"))
    assert message is None
    message = errors.os_error_message(PermissionError(errno.EACCES, "Permission denied", "/data/x.png"))
    assert message == (
        "/data/x.png: Permission denied [EACCES]; permission denied: choose a file or folder you may write to, "
        "or change its permissions"
    )
    assert errors.os_error_message(OSError("no errno")) is None


# -- the real cases, as a user meets them -------------------------------------------------------------------
def _driver(prelude: str, module: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python -m module args` with `prelude` run first in the same process (it patches the machine)."""
    code = textwrap.dedent(prelude) + f"\nimport runpy, sys\nsys.argv = {[module, *args]!r}\n"
    code += f"runpy.run_module({module!r}, run_name='__main__')\n"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV)


def test_report_output_that_is_an_existing_file(tmp_path):
    existing = tmp_path / "comparison.md"
    existing.write_text("an earlier table\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rootseg.report",
            f"runs=[{tmp_path / 'run'}]",
            f"output={existing}",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"error: output={existing} is a file" in run.stderr and "Traceback" not in run.stderr
    assert existing.read_text() == "an earlier table\n"  # nothing overwritten


def _fake_loop(tmp_path: Path, failure_at_second_mask: BaseException):
    """predict's loop (rootseg.inference.folder._run) over 3 small scans with a stand-in predictor, the second
    mask write raising `failure_at_second_mask`."""
    import numpy as np
    from omegaconf import OmegaConf
    from PIL import Image

    from rootseg.inference import folder
    from rootseg.inference.jobs import find_images, plan_jobs
    from rootseg.inference.outputs import output_paths

    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir(parents=True)
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(scans / f"{name}.png")
    jobs = plan_jobs(find_images(scans), out)

    class Stand:
        threshold = 0.5  # ranked.csv's uncertainty is measured around it

        def probabilities(self, image, path=None):
            return np.full(np.asarray(image).shape[:2], 0.7, np.float32)

        def mask(self, probs):
            return probs >= 0.5

    written = []

    def write_mask(path, mask):
        written.append(path)
        if len(written) == 2:
            raise failure_at_second_mask
        real(path, mask)

    real = folder.write_mask
    folder.write_mask = write_mask
    cfg = OmegaConf.create({"save_rootpainter": False, "save_overlay": False, "length_method": "pixels"})
    todo = [(job, output_paths(out, job.stem, "none")) for job in jobs]
    try:
        with pytest.raises(type(failure_at_second_mask)) as raised:
            folder._run(todo, Stand(), cfg, out, jobs, (None, None))  # tables: mm per pixel, trait settings
    finally:
        folder.write_mask = real
    return raised.value, out


def test_predict_loop_notes_what_is_kept_on_a_full_disk_and_on_ctrl_c(tmp_path, capsys):
    full, out = _fake_loop(tmp_path / "full", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "b.png"))
    assert full.__notes__ == [
        f"(while writing the outputs of b.png, after 1 images segmented in this run; every finished image is kept "
        f"in {out}: run the same command again to resume)"
    ]
    assert (out / "a.png").is_file() and not (out / "b.png").exists()
    assert "a.png" in (out / "results.csv").read_text() and "b.png" not in (out / "results.csv").read_text()
    stopped, out = _fake_loop(tmp_path / "stop", KeyboardInterrupt())
    assert stopped.__notes__ == [
        f"interrupted: 1 segmented in this run; run the same command again to resume (outputs in {out})"
    ]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        errors.interrupted(stopped)
    assert exited.value.code == 130 and capsys.readouterr().err == stopped.__notes__[0] + "\n"


@pytest.fixture
def scans(tmp_path, synthetic_dir) -> Path:
    import shutil

    folder = tmp_path / "scans"
    folder.mkdir()
    for path in sorted((synthetic_dir / "images").glob("*.png"))[:3]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.slow
def test_disk_full_during_predict_keeps_what_was_done_and_resumes(tmp_path, scans, tiny_checkpoint):
    """~70 s (two predict processes); the fast test of the same is test_predict_loop_notes_what_is_kept_...
    min_free_disk_mb=0, and the disk fills while the second mask is written (every write of PIL, numpy and
    the CSV writer goes through rootseg.io.atomic, whose temporary file meets ENOSPC)."""
    out = tmp_path / "out"
    first, second, third = sorted(p.stem for p in scans.iterdir())
    prelude = f"""
        import errno, os
        from pathlib import Path
        from PIL import Image
        real_save = Image.Image.save
        masks = []
        def save(self, fp, *args, **kwargs):  # the mask's temporary file: .<stem>.<random>.tmp.png
            if any(Path(str(fp)).name.startswith(f".{{stem}}.") for stem in {[first, second, third]!r}):
                masks.append(fp)
                if len(masks) == 2:
                    Path(fp).write_bytes(b"a partial PNG")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_save(self, fp, *args, **kwargs)
        Image.Image.save = save
    """
    args = [f"ckpt_path={tiny_checkpoint}", f"input={scans}", f"output={out}", "min_free_disk_mb=0"]
    run = _driver(prelude, "rootseg.predict", *args, f"hydra.run.dir={tmp_path / 'hydra'}")
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert f"error: {out / second}.png: No space left on device [ENOSPC]; the disk is full" in run.stderr
    assert f"(while writing the outputs of {second}.png, after 1 images segmented in this run" in run.stderr
    assert "run the same command again to resume" in run.stderr
    assert (out / f"{first}.png").is_file() and not (out / f"{second}.png").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no partial file left
    table = (out / "results.csv").read_text()
    assert first in table and second not in table
    again = subprocess.run(
        [sys.executable, "-m", "rootseg.predict", *args, f"hydra.run.dir={tmp_path / 'hydra2'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 segmented, 1 skipped" in again.stdout
    assert len((out / "results.csv").read_text().strip().splitlines()) == 4  # header + 3 images


@pytest.mark.slow
def test_export_beside_a_checkpoint_on_a_read_only_mount(tmp_path, tiny_checkpoint):
    """The checkpoint's folder refuses new files (EROFS), as a read-only mount does."""
    import shutil

    mount = tmp_path / "mount"
    mount.mkdir()
    ckpt = mount / "model.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)
    prelude = f"""
        import errno, os, tempfile
        real = tempfile.mkstemp
        def read_only(*args, dir=None, **kwargs):
            if dir is not None and os.path.abspath(dir).startswith({str(mount)!r}):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, "tmpfile"))
            return real(*args, dir=dir, **kwargs)
        tempfile.mkstemp = read_only
    """
    run = _driver(prelude, "rootseg.export", f"ckpt_path={ckpt}", "format=torchscript", f"hydra.run.dir={tmp_path}/h")
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"error: {mount / 'model.pt'}: Read-only file system [EROFS]" in run.stderr
    assert "write elsewhere" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in mount.iterdir()) == ["model.ckpt"]


@pytest.mark.slow
def test_ctrl_c_during_predict_is_one_line(tmp_path, scans, tiny_checkpoint):
    """SIGINT while the second image is segmented: predict's own line, exit 130, no traceback after it."""
    out = tmp_path / "out"
    # a background job of a non-interactive shell (as CI may start the suite) inherits SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: restore the one a terminal gives
    prelude = """
        import os, signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import rootseg.inference.folder as folder
        real = folder.segment_image
        seen = []
        def interrupted(job, *args, **kwargs):
            seen.append(job)
            if len(seen) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return real(job, *args, **kwargs)
        folder.segment_image = interrupted
    """
    args = [f"ckpt_path={tiny_checkpoint}", f"input={scans}", f"output={out}", f"hydra.run.dir={tmp_path / 'h'}"]
    run = _driver(prelude, "rootseg.predict", *args)
    assert run.returncode == 130, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"interrupted: 1 segmented in this run; run the same command again to resume (outputs in {out})"
    assert sum("interrupted" in line for line in lines) == 1
    assert sum((out / f"{p.stem}.png").is_file() for p in scans.iterdir()) == 1
