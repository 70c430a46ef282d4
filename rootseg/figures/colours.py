"""The one colour scheme of every picture rootseg draws (overlays, error maps, dashboards, the annotate app).

Errors follow Smith et al. 2020 Fig. 7-9: true positives white, false positives red, false negatives green,
true negatives black; unlabelled pixels (scored nowhere) grey. A prediction without a truth is cyan,
RootPainter's segmentation colour.
"""

from __future__ import annotations

RGB = tuple[int, int, int]

TRUE_POSITIVE: RGB = (255, 255, 255)
FALSE_POSITIVE: RGB = (255, 0, 0)
FALSE_NEGATIVE: RGB = (0, 255, 0)
TRUE_NEGATIVE: RGB = (0, 0, 0)
UNLABELLED: RGB = (96, 96, 96)
PREDICTED: RGB = (0, 255, 255)
#: the model's mask under a person's paint in the annotate app: blue, not cyan, which blends with the green
#: background brush (RootPainter's annotation colours, red root and green background, are the file format's)
ANNOTATE_PREDICTED: RGB = (40, 120, 255)

#: by confusion-matrix cell, for error maps
ERROR_COLOURS: dict[str, RGB] = {
    "tp": TRUE_POSITIVE,
    "fp": FALSE_POSITIVE,
    "fn": FALSE_NEGATIVE,
    "tn": TRUE_NEGATIVE,
    "unlabelled": UNLABELLED,
}
