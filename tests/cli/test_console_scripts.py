"""The installed console scripts run the same commands as `python -m rootseg.<command>`, hints included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# script -> a mistyped setting and the key it was meant to be
SCRIPTS = {
    "rootseg-train": ("sed=3", "seed"),
    "rootseg-eval": ("thresold=0.9", "threshold"),
    "rootseg-predict": ("thresold=0.9", "threshold"),
    "rootseg-annotate": ("prot=1", "port"),
    "rootseg-report": ("figurs=2", "figures"),
    "rootseg-measure": ("dpii=600", "dpi"),
    "rootseg-study": ("valeu=length_mm", "value"),
    "rootseg-synthesize": ("sede=1", "seed"),
    "rootseg-download": ("outptu=x", "output"),
    "rootseg-compare": ("trth=x", "truth"),
    "rootseg-models": ("crad=x", "card"),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_prints_its_config_and_hints_a_mistyped_key(script):
    typo, meant = SCRIPTS[script]
    path = Path(sys.executable).parent / script
    if not path.exists():
        pytest.skip(f"{script} is not installed next to {sys.executable} (pip install -e . makes it)")
    shown = subprocess.run([str(path), "--cfg", "job"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"{meant}:" in shown.stdout
    wrong = subprocess.run([str(path), typo], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0
    key = typo.split("=")[0]
    assert f"hint: {key} is not a setting" in wrong.stderr and f"did you mean {meant}?" in wrong.stderr
