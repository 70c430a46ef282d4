"""Study summaries: names -> tube, depth and date; tables, depth profiles and changes against hand-made truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SEGROOT
from PIL import Image

from rootseg.study.names import NAMINGS, depth_from_location, parse_names
from rootseg.study.tables import length_changes, run_study, study_tables

SEGROOT_IMAGES = SEGROOT / "images"


def ci600(tube: int, location: int, date: str, session: int, time: str = "084840") -> str:
    return f"Untitled_T{tube:03d}_L{location:03d}_{date}_{time}_{session:03d}_Untitled.jpg"


def per_image_table() -> pd.DataFrame:
    """Two tubes, locations 1-2, two dates; length_mm and rld chosen by hand; one duplicate and two strangers."""
    rows = [
        (ci600(2, 1, "11.04.17", 4), 100.0, 1.0),
        (ci600(2, 2, "11.04.17", 4), 50.0, 0.5),
        (ci600(5, 1, "11.04.17", 4), 300.0, 3.0),
        (ci600(5, 2, "11.04.17", 4), 70.0, 0.7),
        (ci600(2, 1, "25.04.17", 5), 160.0, 1.6),
        (ci600(2, 2, "25.04.17", 5), 20.0, 0.2),
        (ci600(5, 1, "25.04.17", 5), 300.0, 3.0),
        (ci600(5, 2, "25.04.17", 5, time="090000"), 90.0, 0.9),  # scanned twice that day: averaged
        (ci600(5, 2, "25.04.17", 5, time="091500"), 110.0, 1.1),
        ("calibration_card.jpg", 1.0, 0.01),
        ("T002_L001_no_date.jpg", 2.0, 0.02),
    ]
    return pd.DataFrame(rows, columns=["name", "length_mm", "rld_cm_per_cm3"]).assign(tips=3)


def test_ci600_and_prmi_names_parse_to_tube_location_date() -> None:
    pattern, date_format = NAMINGS["ci600"]
    table, unmatched = parse_names(["Untitled_T002_L004_11.04.17_084840_004_Untitled.jpg"], pattern, date_format)
    row = table.iloc[0]
    assert (row["tube"], row["location"], row["date"]) == (2, 4.0, pd.Timestamp("2017-04-11"))
    assert (row["time"], row["session"]) == ("084840", "004") and unmatched == []
    pattern, date_format = NAMINGS["prmi"]
    names = ["Cotton_T010_L044_2012.06.26_111650_AMR_DPI150.jpg", "Peanut_T2_L7_2017-08-04_090000.png"]
    table, unmatched = parse_names(names, pattern, date_format)
    assert table["tube"].tolist() == [10, 2] and table["location"].tolist() == [44.0, 7.0]
    assert table["date"].tolist() == [pd.Timestamp("2012-06-26"), pd.Timestamp("2017-08-04")]
    from rootseg.sources.prmi import NAME_RE  # the reader of the PRMI release sees the same fields

    for name, (_, row) in zip(names, table.iterrows()):
        found = NAME_RE.match(Path(name).stem)
        assert (int(found["tube"]), float(found["depth"])) == (row["tube"], row["location"])


def test_depth_from_location_along_a_slanted_tube() -> None:
    assert depth_from_location(4) == pytest.approx(4 * 19.56 * math.sin(math.radians(45)))
    assert depth_from_location(3, spacing_cm=10, angle_deg=90) == pytest.approx(30)
    assert depth_from_location(2, spacing_cm=10, angle_deg=30, depth_offset_cm=-5) == pytest.approx(5)
    with pytest.raises(ValueError, match="angle"):
        depth_from_location(1, angle_deg=0)
    with pytest.raises(ValueError, match="spacing"):
        depth_from_location(1, spacing_cm=-1)


def test_tables_profiles_and_changes_against_hand_computed_values() -> None:
    tables = study_tables(per_image_table(), spacing_cm=10, angle_deg=90)
    assert sorted(tables.unmatched) == ["T002_L001_no_date.jpg", "calibration_card.jpg"]  # listed, not dropped
    positions = tables.positions.set_index(["tube", "depth_cm", "date"])
    duplicate = positions.loc[(5, 20.0, pd.Timestamp("2017-04-25"))]
    assert (duplicate["n_images"], duplicate["length_mm"], duplicate["tips"]) == (2, 100.0, 3)
    assert len(tables.positions) == 8 and set(tables.positions["location"]) == {1.0, 2.0}
    profiles = tables.profiles.set_index(["date", "depth_cm"])
    first = profiles.loc[(pd.Timestamp("2017-04-11"), 10.0)]
    assert (first["n_tubes"], first["rld_cm_per_cm3_mean"]) == (2, pytest.approx(2.0))
    assert first["rld_cm_per_cm3_sd"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    changes = tables.changes.set_index(["tube", "depth_cm"])
    assert len(changes) == 4 and (changes["days"] == 14).all()
    grew, shrank, grew_twice = changes.loc[(2, 10.0)], changes.loc[(2, 20.0)], changes.loc[(5, 20.0)]
    assert (grew["net"], grew["gained"], grew["lost"]) == (60.0, 60.0, 0.0)
    assert (shrank["net"], shrank["gained"], shrank["lost"]) == (-30.0, 0.0, 30.0)
    assert grew["net_per_before"] == pytest.approx(0.6) and grew["net_per_after"] == pytest.approx(60 / 160)
    assert grew_twice["length_mm_after"] == 100.0 and changes.loc[(5, 10.0), "net"] == 0.0


def test_changes_pair_only_consecutive_dates_of_one_position() -> None:
    positions = pd.DataFrame(
        {
            "tube": [1, 1, 1, 2],
            "depth_cm": [10.0, 10.0, 10.0, 10.0],
            "date": pd.to_datetime(["2020-05-20", "2020-05-01", "2020-05-10", "2020-05-10"]),
            "length_mm": [5.0, 1.0, 8.0, 4.0],
        }
    )
    changes = length_changes(positions)
    assert changes["net"].tolist() == [7.0, -3.0]  # 1 -> 8 -> 5 in date order; tube 2 has one date only
    assert changes["days"].tolist() == [9, 10] and changes["lost"].tolist() == [0.0, 3.0]


def test_write_study_writes_tables_plot_and_unmatched_atomically(tmp_path) -> None:
    source = tmp_path / "results.csv"
    per_image_table().to_csv(source, index=False)
    _, paths = run_study(source, tmp_path / "study", spacing_cm=10, angle_deg=90)
    assert set(paths) == {"images", "positions", "profiles", "changes", "plot", "unmatched"}
    assert paths["unmatched"].read_text().splitlines() == ["calibration_card.jpg", "T002_L001_no_date.jpg"]
    images = pd.read_csv(paths["images"])
    assert len(images) == 9 and images["date"].iloc[0] == "2017-04-11"
    assert set(pd.read_csv(paths["positions"]).columns) >= {"tube", "location", "depth_cm", "date", "n_images"}
    with Image.open(paths["plot"]) as plot:
        assert plot.format == "PNG" and plot.size[0] > 300
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == sorted(p.name for p in paths.values())


@pytest.mark.parametrize(
    ("pattern", "date_format", "message"),
    [
        (r"(?P<tube>\d+", "%d.%m.%y", "not a valid regular expression"),
        (r"T(\d+)_L(\d+)", "%d.%m.%y", "no named group tube, date, location"),
        (r"_T(?P<tube>\d+)_L(?P<location>\d+)_(?P<date>\d+\.\d+\.\d+)", "%Y-%m-%d", "Untitled_T002.*does not parse"),
    ],
)
def test_bad_settings_are_one_paragraph_errors_naming_the_setting_or_file(pattern, date_format, message) -> None:
    with pytest.raises(ValueError, match=message) as error:
        study_tables(per_image_table(), pattern, date_format)
    assert "\n" not in str(error.value)


def test_a_name_without_location_is_an_error_not_a_silent_drop() -> None:
    table = pd.DataFrame({"name": [ci600(1, 1, "01.05.17", 1), "Untitled_T001_Lx_01.05.17_1"], "length_mm": 1.0})
    pattern = r"_T(?P<tube>\d+)_L(?P<location>\d+)?\w*_(?P<date>\d\d\.\d\d\.\d\d)"
    with pytest.raises(ValueError, match=r"no location or depth in 1 matched name.*Untitled_T001_Lx"):
        study_tables(table, pattern, value="length_mm")


def test_bad_tables_are_errors_naming_the_file(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"missing\.csv: no such"):
        run_study(tmp_path / "missing.csv", tmp_path / "out")
    (tmp_path / "noname.csv").write_text("file,length_mm\na.jpg,1\n")
    with pytest.raises(ValueError, match=r"noname\.csv: no 'name' column"):
        run_study(tmp_path / "noname.csv", tmp_path / "out")
    (tmp_path / "pixels.csv").write_text(f"name,length_px\n{ci600(1, 1, '01.05.17', 1)},10\n")
    with pytest.raises(ValueError, match=r"pixels\.csv: no column 'rld_cm_per_cm3'"):
        run_study(tmp_path / "pixels.csv", tmp_path / "out")
    (tmp_path / "strangers.csv").write_text("name,length_mm,rld_cm_per_cm3\nx.jpg,1,1\n")
    with pytest.raises(ValueError, match=r"strangers\.csv: none of the 1 file names matches"):
        run_study(tmp_path / "strangers.csv", tmp_path / "out")
    with pytest.raises(ValueError, match="naming 'minirhizo'"):
        run_study(tmp_path / "strangers.csv", tmp_path / "out", naming="minirhizo")
    assert not (tmp_path / "out").exists()


@pytest.mark.realdata
@pytest.mark.skipif(not SEGROOT_IMAGES.is_dir(), reason="needs ../shared/datasets/segroot")
def test_every_segroot_name_parses() -> None:
    names = sorted(p.name for p in SEGROOT_IMAGES.glob("*.jpg"))
    table, unmatched = parse_names(names, *NAMINGS["ci600"])
    assert unmatched == [] and len(table) == len(names) >= 50
    assert table["location"].between(1, 8).all() and table["date"].dt.year.eq(2017).all()
    assert table["session"].astype(int).between(1, 8).all()


DEPTH_PATTERN = r"^T(?P<tube>\d+)(_D(?P<depth>\w+))?(_L(?P<location>\d+))?_(?P<date>\d{8})"


def _depth_table(*names: str) -> pd.DataFrame:
    return pd.DataFrame({"name": list(names), "length_mm": np.arange(1.0, len(names) + 1)})


def test_an_optional_depth_group_missing_in_a_name_falls_back_to_its_location() -> None:
    table = _depth_table("T1_D10_20200101", "T1_L2_20200101", "T2_20200101")
    with pytest.raises(ValueError, match=r"no location or depth in 1 matched name.*T2_20200101"):
        study_tables(table, DEPTH_PATTERN, "%Y%m%d", value="length_mm")
    tables = study_tables(table.iloc[:2], DEPTH_PATTERN, "%Y%m%d", spacing_cm=10, angle_deg=30, value="length_mm")
    assert tables.images.set_index("name")["depth_cm"].to_dict() == {"T1_D10_20200101": 10.0, "T1_L2_20200101": 10.0}
    no_location = r"^T(?P<tube>\d+)(_D(?P<depth>\d+))?_(?P<date>\d{8})"  # and no location group at all
    with pytest.raises(ValueError, match=r"no location or depth in 1 matched name.*T1_20200201"):
        study_tables(_depth_table("T1_D10_20200101", "T1_20200201"), no_location, "%Y%m%d", value="length_mm")


@pytest.mark.parametrize("depth", ["inf", "Infinity", "nan"])
def test_a_depth_that_is_not_finite_is_refused_by_name(depth) -> None:
    with pytest.raises(ValueError, match=rf"T2_D{depth}_20200101: depth '{depth}' is not a finite number"):
        study_tables(
            _depth_table("T1_D10_20200101", f"T2_D{depth}_20200101"), DEPTH_PATTERN, "%Y%m%d", value="length_mm"
        )


@pytest.mark.parametrize("offset", [math.inf, -math.inf, math.nan])
def test_a_bad_depth_offset_is_named_not_the_file_names(offset) -> None:
    with pytest.raises(ValueError, match=r"^depth_offset_cm must be a finite depth in cm") as error:
        study_tables(per_image_table(), spacing_cm=10, angle_deg=90, depth_offset_cm=offset)
    assert "Untitled" not in str(error.value)


def test_repeated_image_rows_are_refused_not_multiplied() -> None:
    table = pd.concat([per_image_table().iloc[:4]] * 2 + [per_image_table().iloc[4:6]])
    with pytest.raises(ValueError, match=r"4 image name\(s\) have more than one row \(first: \['Untitled_T002_L001"):
        study_tables(table, spacing_cm=10, angle_deg=90)
