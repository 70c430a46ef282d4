"""Only one build step beyond pyproject.toml: the Hydra configs go into the wheel.

The configs live at the top of the repository (conf/), where users read and copy them. A wheel (`pip install .`,
`pip wheel .`) carries them as rootseg/conf/, where `rootseg.config.run_config.CONFIG_DIR` finds them; an
editable install and the source tree use conf/ itself.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    """build_py, then conf/**/*.yaml copied to <build>/rootseg/conf (skipped for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "conf"
        for path in sorted(source.rglob("*.yaml")):
            target = Path(self.build_lib) / "rootseg" / "conf" / path.relative_to(source)
            self.mkpath(str(target.parent))
            self.copy_file(str(path), str(target))


setup(cmdclass={"build_py": BuildPyWithConfigs})
