"""One-paragraph errors for the command-line entry points instead of tracebacks, and their exit codes.

A user's mistake (an unreadable scan, a wrong folder, a checkpoint that does not fit, a bad option) is
rootseg's own error class or a ValueError whose message already names the file and the fix; a traceback
only hides it. So are the failures of the machine a user must fix before running again: a full disk
(ENOSPC, EDQUOT), a read-only file system (EROFS), a file where a folder should be (EEXIST), no permission.
`HYDRA_FULL_ERROR=1` brings the traceback back.

Every command has one grammar, Hydra overrides. A new command follows this pattern (see rootseg/cli/measure.py):
  conf/<command>.yaml   defaults `_self_`, `paths: default`, `hydra: default`; `task_name: <command>`; every key
                        with its default and a comment (a key without a default is `???`)
  rootseg/cli/<command>.py
      @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="<command>")
      def main(cfg):
          with errors.user_errors():
              typed.check(cfg, RULES)      # rootseg.config.typed: every value typed before any work
              result = library_function(...)
          print(...); sys.exit(1) if it failed in part
      def entry(): errors.run(main, "<command>")   # Hydra's rejection of a key gains "did you mean ..."
  rootseg/<command>.py  the `python -m rootseg.<command>` shim; pyproject's console script `rootseg-<command>`

Exit codes of every command (train, eval, predict, report, export, check, download, synthesize, measure, study,
annotate):
  0    done
  1    done in part: predict could not read some images (listed, and in failures.csv); download failed
       (network, digest); or an unexpected error, a bug, shown with its traceback
  2    a user's mistake or a machine to fix: a wrong setting, a missing or unreadable file, a data check with
       errors, a full disk, a read-only or unwritable folder, a file in the way
  130  interrupted (Ctrl-C): one line says what was kept and how to go on
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

#: errors whose message is the whole story (ImageReadError, DataLayoutError, CheckpointLoadError are ValueErrors)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C

#: operating-system errors a user fixes, not bugs: errno -> what to do
OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere, then run the same command again",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere, then run the same command again",
    errno.EROFS: "that file system is read-only: write elsewhere (output=... on a writable disk)",
    errno.EEXIST: "a file is in the way: remove it or choose another name",
    errno.EACCES: "permission denied: choose a file or folder you may write to, or change its permissions",
    errno.EPERM: "operation not permitted: choose a file or folder you may write to",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "that is a folder where a file was expected: check the path",
    errno.ENAMETOOLONG: "the file name is too long for its file system: choose a shorter one",
}


def os_error_message(error: OSError) -> str | None:
    """One paragraph for an operating-system error a user can fix, naming the file; None for any other."""
    advice = OS_ADVICE.get(error.errno)  # type: ignore[arg-type]
    if advice is None or not error.strerror:
        return None
    where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    code = errno.errorcode.get(error.errno, error.errno)  # type: ignore[arg-type]
    return f"{where + ': ' if where else ''}{error.strerror} [{code}]; {advice}"


def _message(error: BaseException) -> str | None:
    """The paragraph to print for a user's mistake, or None when the error is a bug (keep its traceback)."""
    from omegaconf.errors import MissingMandatoryValue

    if isinstance(error, MissingMandatoryValue):
        key = getattr(error, "full_key", None) or str(error)
        return f"{key} is required and has no value: add {key}=... to the command"
    if isinstance(error, OSError):
        message = os_error_message(error)
        if message is None and not isinstance(error, USER_ERRORS):
            return None
        message = message or str(error)
    elif isinstance(error, USER_ERRORS):
        message = str(error)
    else:
        return None
    return "\n".join([message, *getattr(error, "__notes__", [])])


def interrupted(error: KeyboardInterrupt | None = None) -> None:
    """Ctrl-C: one line (what was kept and how to go on, when the command said so in a note), exit 130."""
    notes = getattr(error, "__notes__", None) or ["interrupted"]
    print("\n".join(notes), file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print `error: <message>` and exit 2 for a user's mistake, one line and exit 130 for Ctrl-C; anything
    else keeps its traceback."""
    try:
        yield
    except KeyboardInterrupt as error:
        if full_error():
            raise
        interrupted(error)
    except Exception as error:
        message = None if full_error() else _message(error)
        if message is None:
            raise
        print(f"error: {message}\n(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def run(main: Callable[[], object], config_name: str) -> None:
    """Call a `@hydra.main` function; when Hydra rejects an override key, add which key was meant."""
    try:
        main()
    except KeyboardInterrupt as error:  # while Hydra composes the config or sets up the run
        if full_error():
            raise
        interrupted(error)
    except SystemExit as exit_:
        if exit_.code not in (0, None, EXIT_USER_ERROR, EXIT_INTERRUPTED) and not full_error():
            hint = override_hint(config_name, sys.argv[1:])
            if hint:
                print(hint, file=sys.stderr)
        raise


def override_hint(config_name: str, overrides: list[str]) -> str | None:
    """'did you mean ...' for the first `key=value` override whose key the composed config lacks."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from rootseg.config.run_config import CONFIG_DIR

    def is_group(override: str) -> bool:  # data=segroot, model/net=unet_tiny, debug=fdr: choices, not keys
        key = override.split("=", 1)[0].lstrip("+~")
        return "/" in key or (Path(CONFIG_DIR) / key).is_dir()

    settings = [o for o in overrides if "=" in o and not o.startswith(("-", "hydra.", "~"))]
    # groups and +additions shape the config the other keys are looked up in
    kept = [o for o in settings if o.startswith("+") or is_group(o)]
    plain = [o for o in settings if o not in kept]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=kept)
    except Exception:
        return None
    finally:
        GlobalHydra.instance().clear()
    for override in plain:
        key = override.split("=", 1)[0]
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        # keys(), not `in`: OmegaConf's `in` is False for a key whose value is still ??? (data.root)
        if node is None or not OmegaConf.is_dict(node) or leaf in list(node.keys()):
            continue
        close = difflib.get_close_matches(leaf, [str(k) for k in node], n=1)
        meant = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
        return (
            f"hint: {key} is not a setting of this command; {meant}"
            f"`python -m rootseg.{config_name} --cfg job` prints every setting. Use +{key}=... only to add a new key."
        )
    return None
