"""Print rootseg's dependencies from pyproject.toml, one per line, leaving out the ones named.

The Makefile installs these first and sam2 on its own with --no-deps (its torchvision requirement
would pull a CUDA build that breaks `import lightning` beside a CPU torch).
"""

import argparse
import tomllib
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--without", nargs="*", default=[])
parser.add_argument("--extra", nargs="*", default=[])
args = parser.parse_args()
project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in args.extra:
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    name = requirement.split(";")[0].split("[")[0]
    for op in "<>=!~ ":
        name = name.split(op)[0]
    if name not in args.without:
        print(requirement)
