"""One-paragraph errors for the command-line entry points instead of tracebacks.

A user's mistake (an unreadable scan, a wrong folder, a checkpoint that does not fit, a bad option) is
rootseg's own error class or a ValueError whose message already names the file and the fix; a traceback
only hides it. `HYDRA_FULL_ERROR=1` brings the traceback back.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

#: errors whose message is the whole story (ImageReadError, DataLayoutError, CheckpointLoadError are ValueErrors)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


EXIT_USER_ERROR = 2


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print `error: <message>` and exit 2 for a user's mistake; anything else keeps its traceback."""
    try:
        yield
    except USER_ERRORS as error:
        if full_error():
            raise
        from omegaconf.errors import MissingMandatoryValue

        if isinstance(error, MissingMandatoryValue):
            key = getattr(error, "full_key", None) or str(error)
            message = f"{key} is required and has no value: add {key}=... to the command"
        else:
            message = str(error)
        print(f"error: {message}\n(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def run(main: Callable[[], object], config_name: str) -> None:
    """Call a `@hydra.main` function; when Hydra rejects an override key, add which key was meant."""
    try:
        main()
    except SystemExit as exit_:
        if exit_.code not in (0, None, EXIT_USER_ERROR) and not full_error():
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
