"""Runs the command corpus (benchmarks/bad_command_corpus.py): each case's files made in its own folder, the command
run in this process as `python -m rootseg.<command> overrides` would run it, and a verdict.

A case is handled when the command
- exits with the expected status, prints no traceback, and says the expected text (for a refusal, exit 2: one
  paragraph, `error: ...`, naming the key or the file the user typed);
- for a run that must succeed: its outputs pass the case's check (an independent look at the files written);
- creates none of the case's `absent` paths (a refusal comes before any output);
- and in every case leaves every file the setup made (the user's files, an earlier run's outputs) byte for byte
  as it was: none changed, none deleted.

Commands run in this process through their console entry (Hydra's parsing, `errors.run`'s hints, exit codes) with
stdout, stderr and the log captured: about 0.3 s a case instead of 3 s for a fresh interpreter. Used by
benchmarks/bad_inputs.py and tests/cli/test_bad_commands.py (tests import benchmarks, never the reverse)."""

from __future__ import annotations

import _thread
import contextlib
import importlib
import io
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rootseg.io.files import sha256_file

#: exit status of a refusal (rootseg.cli.errors.EXIT_USER_ERROR), kept here so a changed constant fails the corpus
USER_ERROR = 2
INTERRUPTED = 130


@dataclass(frozen=True)
class Kit:
    """What several cases share, built once: checkpoints with random weights (reading them is what is tested)."""

    unet: Path  # +experiment=unet_demo
    rootsam: Path  # RootSAM stage 1 on the micro SAM 2.1
    eval_run: Path  # what rootseg.eval wrote for `unet` on a small synthetic set (report's input)


@dataclass(frozen=True)
class CommandCase:
    name: str
    kind: str  # settings, layout, clicks, report, study, export, download
    command: str  # rootseg.<command>
    #: writes the case's files under its folder (the user's files, an earlier run) and returns the overrides
    setup: Callable[[Path, Kit], list[str]]
    #: texts the output must hold; "{dir}" stands for the case's folder
    says: tuple[str, ...] = ()
    exit_code: int = USER_ERROR
    #: for a run that must succeed: what is wrong with its outputs (None: right), given the folder and the output
    check: Callable[[Path, str], str | None] | None = None
    #: paths under the folder the command must not create (a refusal comes before any output)
    absent: tuple[str, ...] = ()
    #: a Ctrl-C the moment a rootseg log line holds this text (the user who reads a warning and stops the run)
    interrupt_on: str | None = None


@dataclass(frozen=True)
class Outcome:
    code: int
    text: str  # stdout, stderr and the log together, as a terminal shows them


def quoted(path: Path) -> str:
    """A path as a Hydra override value: quoted for spaces and non-ASCII characters."""
    return f"'{path}'"


class _CtrlC(logging.Handler):
    """Shows the line as the terminal would, then stops the run as Ctrl-C does (raised here, before the root
    logger's handlers see the record: so the line is written here)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            print(f"[{record.name}][{record.levelname}] - {record.getMessage()}")
            raise KeyboardInterrupt


#: a case that waits for a log line is stopped this long after it started if the line never comes (a hang guard:
#: without the step warning, `step=1` on a 512 px scan runs 105,625 model passes)
INTERRUPT_GUARD_S = 60.0


@contextlib.contextmanager
def _interrupt(text: str | None) -> Iterator[None]:
    """On the `rootseg` logger, which Hydra's logging set-up leaves alone (it resets only the root's handlers)."""
    if not text:
        yield
        return
    logger = logging.getLogger("rootseg")
    handler = _CtrlC(text)
    guard = threading.Timer(INTERRUPT_GUARD_S, _thread.interrupt_main)
    logger.addHandler(handler)
    guard.start()
    try:
        yield
    finally:
        guard.cancel()
        logger.removeHandler(handler)


def run_in_process(command: str, overrides: list[str], run_dir: Path, interrupt_on: str | None = None) -> Outcome:
    """`python -m rootseg.<command> overrides hydra.run.dir=run_dir` through the command's console entry, in this
    process; a traceback that escapes is part of the text (and the exit status 1, as Python's)."""
    from hydra.core.global_hydra import GlobalHydra

    module = importlib.import_module(f"rootseg.cli.{'evaluate' if command == 'eval' else command}")
    argv, stream, code = sys.argv, io.StringIO(), 0
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sys.argv = [f"rootseg.{command}", *overrides, f"hydra.run.dir={quoted(run_dir)}"]
    GlobalHydra.instance().clear()
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), _interrupt(interrupt_on):
            module.entry()
    except SystemExit as exit_:
        code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 (what escaped the command is the finding)
        stream.write(traceback.format_exc())
        code = 1
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
        for handler in set(root.handlers) - set(handlers):  # Hydra's: its console one writes to `stream`
            handler.close()
        root.handlers[:], root.level = handlers, level
    return Outcome(code, stream.getvalue())


def file_hashes(folder: Path) -> dict[Path, str]:
    """Every file under `folder` (links followed as a user's program would read them) -> sha256; lock files
    (`*.lock`, which hold the pid of the run that last held them) are a run's own and left out."""
    return {path: sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file() and path.suffix != ".lock"}


def _error_paragraph(text: str) -> str | None:
    """The `error: ...` paragraph rootseg.cli.errors prints (up to its HYDRA_FULL_ERROR line), or None."""
    start = text.find("error: ")
    if start < 0:
        return None
    end = text.find("(HYDRA_FULL_ERROR=1", start)
    return text[start : end if end >= 0 else len(text)].strip()


def judge(case: CommandCase, folder: Path, before: dict[Path, str], outcome: Outcome) -> tuple[bool, str]:
    """(handled, detail): the detail is the first problem found, or the message or check that passed."""
    after = file_hashes(folder)
    touched = [str(path.relative_to(folder)) for path, digest in before.items() if after.get(path) != digest]
    problems = [f"changed or deleted the user's {', '.join(touched)}"] if touched else []
    if "Traceback (most recent call last)" in outcome.text:
        problems.append("traceback: " + outcome.text.strip().splitlines()[-1][:200])
    if outcome.code != case.exit_code:
        problems.append(f"exit {outcome.code}, expected {case.exit_code}")
    missing = [text.format(dir=folder) for text in case.says if text.format(dir=folder) not in outcome.text]
    problems += [f"does not say {text!r}" for text in missing]
    paragraph = _error_paragraph(outcome.text)
    if case.exit_code == USER_ERROR and (paragraph is None or "\n\n" in paragraph):
        problems.append("no one-paragraph 'error: ...' message")
    problems += [f"wrote {name}" for name in case.absent if (folder / name).exists()]
    if case.check is not None and outcome.code == 0:
        try:
            wrong = case.check(folder, outcome.text)
        except (OSError, KeyError, ValueError, IndexError) as error:  # an output missing or not as written
            wrong = f"output unreadable: {type(error).__name__}: {error}"
        problems += [wrong] if wrong else []
    if problems:
        return False, "; ".join(problems)[:400] + f" | output: {outcome.text.strip()[-300:]!r}"
    if paragraph is not None:
        return True, paragraph.splitlines()[0][:300]
    return True, f"exit {outcome.code}, output checked"


def run_case(case: CommandCase, work: Path, kit: Kit) -> tuple[bool, str]:
    """Set the case up in `work/<name>`, run its command (run folder outside it), judge the result."""
    folder = work / case.name
    folder.mkdir(parents=True)
    try:
        overrides = case.setup(folder, kit)
    except Exception as error:  # a broken setup is the corpus's bug: reported as not handled, never hidden
        return False, f"setup failed: {type(error).__name__}: {error}"[:400]
    before = file_hashes(folder)
    outcome = run_in_process(case.command, overrides, work / "runs" / case.name, case.interrupt_on)
    return judge(case, folder, before, outcome)


def run_commands(cases: list[CommandCase], work: Path, kit: Kit) -> dict[str, tuple[bool, str]]:
    """Every case's verdict, `{name: (handled, detail)}`, as the files corpus's runners give theirs."""
    return {case.name: run_case(case, work, kit) for case in cases}


def make_kit(work: Path, unet: Path | None = None, rootsam: Path | None = None) -> Kit:
    """The checkpoints, written as rootseg.train writes them (seconds) unless given: random weights of unet_demo
    and of RootSAM stage 1 on the micro SAM 2.1 (resize 256, 128 px tiles); and an eval run of the U-Net."""
    from hydra.core.global_hydra import GlobalHydra

    from rootseg.config.run_config import compose_task
    from rootseg.synthetic.dataset import write_dataset
    from rootseg.tasks.checkpoints import write_untrained

    work.mkdir(parents=True, exist_ok=True)
    if unet is None:
        unet = write_untrained(compose_task("train", ["+experiment=unet_demo"], work / "unet_run"), work / "unet.ckpt")
    if rootsam is None:
        sam = ["+experiment=rootsam_stage1", "model/net=sam2.1_micro", "data=synthetic", "data.resize=256"]
        cfg = compose_task("train", [*sam, "data.tile=128"], work / "sam_run")
        rootsam = write_untrained(cfg, work / "rootsam.ckpt", 2)
        GlobalHydra.instance().clear()  # building SAM 2.1 initialises Hydra's global state
    data = write_dataset(work / "synthetic", n=5, size=(64, 80), seed=1)
    settings = [f"ckpt_path={quoted(unet)}", "data=folder", f"data.root={quoted(data)}", "split=test", "figures=0"]
    evaluated = run_in_process("eval", settings, work / "eval_run")
    if evaluated.code != 0:
        raise RuntimeError(f"the kit's eval run failed: {evaluated.text[-2000:]}")
    return Kit(Path(unet), Path(rootsam), work / "eval_run")
