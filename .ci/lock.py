"""Write or check requirements.lock: the exact version of every package the CPU environment installs.

`make lock` builds a fresh virtual environment from pyproject.toml's ranges (torch first, pinned; sam2 left
out: the Makefile installs it with --no-deps) and writes its `pip freeze` here; `make install` and CI install
the lock with --no-deps, so every machine gets the versions CI tested. torch (and CUDA's packages) stay out of
the lock: the Makefile pins torch itself, and a GPU user's own CUDA build is never replaced.

    python .ci/lock.py freeze PYTHON > requirements.lock   # PYTHON: the fresh environment's interpreter
    python .ci/lock.py check requirements.lock             # every declared requirement locked, in range
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
#: installed on their own by the Makefile (torch pinned first, sam2 --no-deps), or the project itself
NOT_LOCKED = re.compile(r"^(torch|sam2|rootseg|triton|nvidia-.*|pip)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return requirements


def freeze(python: str) -> str:
    lines = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    pinned = sorted(
        (line for line in lines if "==" in line and not NOT_LOCKED.match(canonical(line.split("==")[0]))),
        key=lambda line: canonical(line.split("==")[0]),
    )
    version = subprocess.run(
        [python, "-c", "import sys, torch; print(sys.version.split()[0], torch.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    header = (
        "# Exact versions of rootseg's CPU environment (every extra of the Makefile's EXTRAS), written by `make lock`\n"
        f"# on Python {version[0]} beside torch {version[1]}; `make install` installs them with --no-deps.\n"
        "# torch and sam2 are installed by the Makefile itself (torch pinned first, sam2 without its torchvision).\n"
    )
    return header + "\n".join(pinned) + "\n"


def read_lock(lock_file: Path) -> dict[str, str]:
    """{canonical name: version} of the lock's `name==version` lines."""
    locked = {}
    for line in lock_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            locked[canonical(name)] = version.strip()
    return locked


def check(lock_file: Path, extras: list[str]) -> list[str]:
    """What is wrong with the lock against pyproject.toml: a requirement missing or locked outside its range."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a new environment before its dependencies: pip's own copy
        from pip._vendor.packaging.requirements import Requirement

    locked = read_lock(lock_file)
    problems = []
    for text in declared(extras):
        requirement = Requirement(text)
        name = canonical(requirement.name)
        if NOT_LOCKED.match(name):
            continue
        if name not in locked:
            problems.append(f"{requirement.name} is declared in pyproject.toml but not in {lock_file.name}")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{requirement.name}=={locked[name]} in {lock_file.name} is outside {text!r}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "freeze":
        sys.stdout.write(freeze(argv[1]))
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        problems = check(Path(argv[1]), argv[2:] or ["dev", "sweep", "slurm"])
        for problem in problems:
            print(f"{argv[1]}: {problem}; run `make lock` to regenerate it", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
