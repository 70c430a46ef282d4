"""The synthetic generator's exact truth, and root traits measured on its masks against it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from rootseg.measure.intersect import line_intersect_counts
from rootseg.measure.traits import root_traits
from rootseg.synthetic.dataset import ensure_dataset, write_dataset
from rootseg.synthetic.generator import generate_sample
from rootseg.synthetic.truth import _own_mask, drawn_width, root_truth

SEEDS = range(40)
SIZE = (256, 256)


@dataclass
class Root:
    points: np.ndarray
    widths: np.ndarray
    parent: int = -1


def polyline(start: tuple[float, float], end: tuple[float, float], width: float, parent: int = -1) -> Root:
    """A straight root in 2 px steps, as the generator's random walks are."""
    n = max(2, int(math.hypot(end[0] - start[0], end[1] - start[1]) / 2) + 1)
    points = np.linspace(start, end, n)
    return Root(points, np.full(n - 1, float(width)), parent)


@pytest.fixture(scope="module")
def clean_samples() -> list:
    """Generated 256 px scans whose roots touch only where laterals leave and whose ends keep off the border:
    those where a mask can show every tip and branch point (16 of seeds 0-39)."""
    samples = [generate_sample(seed, SIZE) for seed in SEEDS]
    return [s for s in samples if not s.truth["touching"] and s.truth["near_border"] == 0]


@pytest.mark.parametrize("thickness", [2, 3, 4, 5, 8, 11])
def test_drawn_width_matches_what_cv2_draws(thickness: int) -> None:
    """Width of the drawn mask from its area (less the round caps) over 0-90 deg: the mean within 3 % of
    `drawn_width`, each angle within 0.7 px (cv2's anti-aliased polygons are narrower off the axes)."""
    canvas = np.zeros((420, 420), np.uint8)
    widths = []
    for angle in range(0, 91, 10):
        theta = math.radians(angle)
        start = np.array([60.3, 60.6]) if angle else np.array([60.3, 200.6])
        end = start + 300 * np.array([math.cos(theta), math.sin(theta)])
        area = _own_mask(canvas, polyline(tuple(start), tuple(end), thickness)).sum()
        width = area / 300
        for _ in range(3):  # take off the caps, pi w^2 / 4
            width = (area - math.pi * width**2 / 4) / 300
        widths.append(width)
    assert np.mean(widths) == pytest.approx(drawn_width(thickness), rel=0.03)
    assert max(abs(w - drawn_width(thickness)) for w in widths) < 0.7, np.round(widths, 2)


def test_truth_of_a_hand_made_root_system() -> None:
    """One primary (both ends inside) with one lateral: 3 tips, 1 branch point; the 64 px grid (rows 32, 96,
    160, 224; columns likewise) is crossed 4 times by the primary at y = 100 and once by the lateral; the 32 px
    grid (16, 48, ..., 240) 6 times by the primary, and by the lateral at rows 112, 144, 176 and column 144."""
    roots = [polyline((20, 100), (230, 100), 6), polyline((120, 100), (150, 180), 3, parent=0)]
    truth = root_truth(roots, (256, 256), 210 + math.hypot(30, 80))
    assert (truth["tips"], truth["branch_points"], truth["near_border"], truth["touching"]) == (3, 1, 0, False)
    assert truth["line_intersections"] == {"32": 10, "64": 5}
    assert [r["length_px"] for r in truth["roots"]] == pytest.approx([210, math.hypot(30, 80)])
    assert [r["diameter_px"] for r in truth["roots"]] == pytest.approx([drawn_width(6), drawn_width(3)])
    crossing = [*roots, polyline((60, 20), (60, 200), 4)]  # a second primary crossing the first
    assert root_truth(crossing, (256, 256), 0.0)["touching"] is True
    leaving = [polyline((-30, 100), (230, 100), 6)]  # starts outside: one tip inside, one end far outside
    assert (root_truth(leaving, (256, 256), 0.0)["tips"], root_truth(leaving, (256, 256), 0.0)["near_border"]) == (1, 0)
    at_edge = [polyline((2, 100), (230, 100), 6)]  # an end 2.5 px inside the edge: a mask cannot tell
    assert root_truth(at_edge, (256, 256), 0.0)["near_border"] == 1


def test_truth_is_consistent_and_recorded_per_image(tmp_path) -> None:
    sample = generate_sample(3, SIZE)
    truth = sample.truth
    assert sum(r["length_px"] for r in truth["roots"]) == pytest.approx(sample.centreline_length)
    assert truth["centreline_length_px"] == sample.centreline_length
    assert all(-1 <= r["parent"] < i for i, r in enumerate(truth["roots"]))
    assert sample.root_mask.dtype == bool and (sample.root_mask >= (sample.mask > 0)).all()  # visible <= all
    out = write_dataset(tmp_path / "set", 2, SIZE, seed=5)
    recorded = json.loads((out / "truth.json").read_text())
    assert sorted(recorded) == ["synth_0000", "synth_0001"]
    expected = generate_sample(np.random.SeedSequence(5, spawn_key=(1,)), SIZE).truth
    assert recorded["synth_0001"] == json.loads(json.dumps(expected))
    (out / "truth.json").unlink()  # a set written before truth existed is written again
    ensure_dataset(out, 2, SIZE, seed=5)
    assert (out / "truth.json").is_file()


def test_every_lateral_starts_on_the_root_recorded_as_its_parent() -> None:
    from rootseg.synthetic.generator import _roots

    checked = 0
    for seed in range(6):
        roots = _roots(np.random.default_rng(seed), SIZE, 1.0)
        for i, root in enumerate(roots):
            if root.parent >= 0:
                assert root.parent < i
                assert np.hypot(*(roots[root.parent].points - root.points[0]).T).min() == 0.0
                checked += 1
    assert checked >= 10


def test_tips_and_branch_points_exact_on_clean_generated_images(clean_samples) -> None:
    assert len(clean_samples) >= 10
    for sample in clean_samples:
        traits = root_traits(sample.root_mask)
        truth = sample.truth
        assert (traits["tips"], traits["branch_points"]) == (truth["tips"], truth["branch_points"]), truth


def test_length_and_diameter_against_generated_truth(clean_samples) -> None:
    """Summed over the clean images the length is within 3 % (measured +1.2 %); per image within 6 % (measured
    0.977-1.057: the skeleton runs into round tips and, where a thick root leaves the frame obliquely, along the
    border into the acute corner). Mean diameter within 10 % on every image (roots >= 3.85 px drawn; measured
    0.92-1.02)."""
    measured = [root_traits(s.root_mask) for s in clean_samples]
    lengths = np.array([t["length_px"] for t in measured])
    true = np.array([s.truth["centreline_length_px"] for s in clean_samples])
    assert lengths.sum() / true.sum() == pytest.approx(1.0, abs=0.03)
    assert np.all(np.abs(lengths / true - 1) < 0.06), np.round(lengths / true, 3)
    for traits, sample in zip(measured, clean_samples):
        assert sample.truth["diameter_mean_px"] >= 4
        assert traits["diameter_mean_px"] == pytest.approx(sample.truth["diameter_mean_px"], rel=0.10)


def test_line_intersect_counts_of_the_mask_against_the_true_crossings(clean_samples) -> None:
    """Where a root runs along a grid line, its body meets the line in several runs but its centreline crosses
    it less often (seed 16: 27 runs, 17 crossings on the 32 px grid), so the mask may count more, never fewer
    (but one, at a tip that just touches a line). Elsewhere the counts agree within one. Measured over these
    images: 1.07 of the true count on the 32 px grid, 1.00 on the 64 px grid; 8 % allowed."""
    close = []
    for spacing in ("32", "64"):
        mask = np.array([line_intersect_counts(s.root_mask, int(spacing))["intersections"] for s in clean_samples])
        true = np.array([s.truth["line_intersections"][spacing] for s in clean_samples])
        assert mask.sum() / true.sum() == pytest.approx(1.0, abs=0.08)
        assert np.all(mask >= true - 1), (spacing, mask, true)
        close.extend(np.abs(mask - true) <= 1)
    assert np.mean(close) >= 0.85
