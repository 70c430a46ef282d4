"""The hand-applied mutants of `hand_mutants.py`: group -> (test files, [(module, text, replacement, note)]).

Each text occurs exactly once in its module. A note marks a mutant judged equivalent (and why); a survivor
without one is a gap in the tests.
"""

from __future__ import annotations

TOPOLOGY = "rootseg/measure/topology.py"
SKELETON = "rootseg/measure/skeleton.py"
LENGTH = "rootseg/measure/length.py"
INTERSECT = "rootseg/measure/intersect.py"
TRAITS = "rootseg/measure/traits.py"
DIAMETER = "rootseg/measure/diameter.py"
SETTINGS = "rootseg/inference/settings.py"
DEVICE = "rootseg/tiling/device.py"

#: the 18 survivors of issue 27's first hand round (as the issue describes them), against the new tests alone
ISSUE_27 = [
    (TOPOLOGY, "height - 1 - graph.ys", "height - graph.ys", ""),
    (TOPOLOGY, "height - 1 - graph.ys, ", "", ""),
    (TOPOLOGY, "[graph.ys, graph.xs,", "[graph.ys + 1, graph.xs,", ""),
    (SKELETON, "<= max_hole_px", "< max_hole_px", ""),
    (SKELETON, "holes[0], holes[-1], ", "holes[-1], ", ""),
    (SKELETON, "holes[0], holes[-1], ", "holes[0], ", ""),
    (SKELETON, "holes[:, 0], holes[:, -1]", "holes[:, -1]", ""),
    (SKELETON, "holes[:, 0], holes[:, -1]", "holes[:, 0]", ""),
    (LENGTH, "ends = graph.neighbours() == 1", "ends = graph.neighbours() != 1", ""),
    (LENGTH, "graph.xs[ends])[1]", "graph.xs[ends])[0]", ""),
    (INTERSECT, "+ 0.5) + 1e-9)", "+ 0.5) + 1e-9 + 0.999999)", ""),
    (INTERSECT, "np.count_nonzero(starts) + np.count_nonzero(lines[..., 0])", "np.count_nonzero(starts)", ""),
    (INTERSECT, "if not spacing_px > 0:", "if spacing_px == 0:", ""),
    (INTERSECT, 'if result["intensity_per_m"] is None:', "if False:", ""),
    (INTERSECT, "if spacing <= 0:", "if spacing < 0:", ""),
    (INTERSECT, "if intersections < 0:", "if False:", ""),
    (TRAITS, "ndi.label(root, structure=_EIGHT)", "ndi.label(root)", ""),
    (TRAITS, "return root & labelled, labelled", "return root, labelled", ""),
    (TRAITS, "sorted(set(edges)) != edges", "sorted(edges) != edges", ""),
    (SETTINGS, "0.0 < float(s.threshold) < 1.0", "0.0 <= float(s.threshold) < 1.0", ""),
    (
        SETTINGS,
        "(isinstance(value, bool) or not isinstance(value, int) or value < 1)",
        "(not isinstance(value, int) or value < 1)",
        "",
    ),
    (DEVICE, 'if device.type not in ("cpu", "cuda"):', "if False:", ""),
    (SETTINGS, "if s.blend is not None and s.blend not in BLEND_MODES:", "if False:", ""),
    (SETTINGS, "if not isinstance(s.tta, bool):", "if False:", ""),
    (SETTINGS, "if s.prompt_free not in (None, *PROMPT_FREE):", "if False:", ""),
    (SETTINGS, "if s.precision not in PRECISIONS:", "if False:", ""),
    (SETTINGS, "or not 0 <= value <= 1):", "or not 0 <= value):", ""),
    (SETTINGS, '    _positive_int("grid_points_per_side", s.grid_points_per_side)\n', "", ""),
    (SETTINGS, '    _positive_int("tile", s.tile)\n', "", ""),
]

GROUPS: dict[str, tuple[list[str], list]] = {
    "issue27_topology": (["tests/measure/test_mutants_topology.py"], ISSUE_27[:8]),
    "issue27_length": (["tests/measure/test_mutants_length.py"], ISSUE_27[8:16]),
    "issue27_traits": (["tests/measure/test_mutants_traits.py"], ISSUE_27[16:19]),
    "issue27_settings": (["tests/inference/test_settings_checks.py"], ISSUE_27[19:]),
}
