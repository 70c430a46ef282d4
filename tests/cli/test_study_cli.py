"""`python -m rootseg.study input=RESULTS_CSV`: the study's files from predict's, measure's or eval's table."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, run_command

from rootseg.study.tables import study_tables


def ci600(tube: int, location: int, date: str, session: int) -> str:
    return f"Untitled_T{tube:03d}_L{location:03d}_{date}_084840_{session:03d}_Untitled.jpg"


@pytest.fixture
def results(tmp_path):
    rows = [
        (ci600(1, 2, "03.04.17", 2), 100.0, 1.0),
        (ci600(1, 2, "10.04.17", 3), 140.0, 1.4),
        (ci600(1, 2, "02.05.17", 5), 90.0, 0.9),
        (ci600(7, 3, "05.04.17", 2), 40.0, 0.4),
        ("calibration.jpg", 1.0, 0.01),
    ]
    path = tmp_path / "results.csv"
    pd.DataFrame(rows, columns=["name", "length_mm", "rld_cm_per_cm3"]).to_csv(path, index=False)
    return path


def study(results, *settings: str) -> int:
    return run_command("study", [f"input={results}", *settings], results.parent / "run")


def test_writes_the_study_beside_the_table(results, capsys):
    assert study(results, "spacing_cm=10", "angle_deg=90") == 0
    out = results.parent / "study"
    assert sorted(p.name for p in out.iterdir()) == [
        "changes.csv",
        "depth_profiles.csv",
        "depth_profiles.png",
        "images.csv",
        "tube_depth_date.csv",
        "unmatched.txt",
    ]
    changes = pd.read_csv(out / "changes.csv")
    assert changes["net"].tolist() == [40.0, -50.0] and changes["depth_cm"].tolist() == [20.0, 20.0]
    assert (out / "unmatched.txt").read_text() == "calibration.jpg\n"
    assert "4 images, 2 tubes, 4 dates; 1 names did not match" in capsys.readouterr().out


def test_period_month_groups_imaging_sessions(results, tmp_path):
    assert study(results, f"output={tmp_path / 'monthly'}", "period=month", "spacing_cm=10", "angle_deg=90") == 0
    positions = pd.read_csv(tmp_path / "monthly" / "tube_depth_date.csv")
    april = positions[(positions["tube"] == 1) & (positions["date"] == "2017-04-01")].iloc[0]
    assert (april["n_images"], april["length_mm"]) == (2, 120.0)  # 3 and 10 April averaged
    changes = pd.read_csv(tmp_path / "monthly" / "changes.csv")
    assert changes[["date_before", "date_after", "net"]].values.tolist() == [["2017-04-01", "2017-05-01", -30.0]]
    images = pd.read_csv(tmp_path / "monthly" / "images.csv")
    assert images["image_date"].tolist()[:2] == ["2017-04-03", "2017-04-10"]


def test_eval_tables_need_a_side_and_get_it(tmp_path):
    table = pd.DataFrame(
        {
            "name": [ci600(1, 1, "03.04.17", 1), ci600(1, 1, "10.04.17", 2), ci600(2, 1, "03.04.17", 1)],
            "pred_length_mm": [1.0, 2.0, 3.0],
            "pred_rld_cm_per_cm3": [0.1, 0.2, 0.3],
            "true_length_mm": [1.5, 2.5, 3.5],
            "true_rld_cm_per_cm3": [0.15, 0.25, 0.35],
        }
    )
    path = tmp_path / "per_image.csv"
    table.to_csv(path, index=False)
    assert study(path) == 2
    assert study(path, "side=true", f"output={tmp_path / 'true'}") == 0
    changes = pd.read_csv(tmp_path / "true" / "changes.csv")
    assert changes["length_mm_before"].tolist() == [1.5] and changes["net"].tolist() == [1.0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("naming=minirhizo", "naming must be one of ci600, prmi, got 'minirhizo'"),
        ("period=year", "period must be one of date, week, month, got 'year'"),
        ("value=tips", "no column 'tips'"),
        ("spacing_cm=x", "spacing_cm must be a finite number (cm) > 0, got 'x'"),
        ("depth_offset_cm=inf", "depth_offset_cm must be a finite number (cm), got inf"),
        ("angle_deg=nan", "angle_deg must be a finite number (degrees from the soil surface) > 0 and <= 90, got nan"),
    ],
)
def test_bad_settings_exit_2_and_write_nothing(results, tmp_path, capsys, setting, message):
    assert study(results, setting, f"output={tmp_path / 'out'}") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_side_of_a_plain_table_and_a_missing_file(results, tmp_path, capsys):
    assert study(results, "side=pred") == 2 and "no pred_ columns" in capsys.readouterr().err
    assert study(tmp_path / "x.csv") == 2 and "no such" in capsys.readouterr().err


def test_a_mistyped_key_is_answered_with_the_key_meant(results, tmp_path, capsys):
    assert study(results, "valeu=length_mm", f"output={tmp_path / 'out'}") == 1
    assert "hint: valeu is not a setting of this command; did you mean value?" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_python_m_runs_the_command(results):
    result = subprocess.run(
        [sys.executable, "-m", "rootseg.study", f"input={results}", "value=length_mm", f"hydra.run.dir={results}.run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (results.parent / "study" / "depth_profiles.png").is_file()


def test_study_tables_profile_the_mean_over_tubes_per_depth(results):
    tables = study_tables(pd.read_csv(results), spacing_cm=10, angle_deg=90, value="length_mm")
    profile = tables.profiles.set_index(["date", "depth_cm"])
    assert profile.loc[(pd.Timestamp("2017-04-03"), 20.0), "length_mm_mean"] == 100.0
