"""A RootPainter project as a data source: its corrective annotations become rootseg's train and val sets.

RootPainter (Smith et al. 2022, github.com/Abe404/root_painter) keeps everything under one *sync directory*:

    <sync>/datasets/<dataset>/               the images (any depth of file names, read by name)
    <sync>/projects/<name>/<name>.seg_proj   JSON: {"name", "dataset", "location", "file_names",
                                             "original_model_file"}; "dataset" is relative to
                                             <sync>/datasets, "location" ("projects/<name>") to <sync>
    <sync>/projects/<name>/annotations/{train,val}/<image stem>.png
                                             RGBA: red = root, green = background, transparent = unlabelled
    <sync>/projects/<name>/segmentations/, models/, messages/, logs/

Annotations are matched to images by stem; images listed in the project without an annotation are not
annotated yet and are skipped (one log line says how many). The unlabelled pixels decode to
IGNORE_INDEX (255), so loss and metrics use only what the annotator painted, as RootPainter does.

Writing segmentations back in RootPainter's format (cyan root on transparent, which RootPainter reads as
its own segmentations) is `rootseg.io.rootpainter.write_rootpainter_segmentation`; this module only reads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.io.images import IMAGE_SUFFIXES
from rootseg.io.masks import read_mask
from rootseg.sources.base import DataLayoutError, Sample, files_by_stem
from rootseg.sources.splits import SplitByFolder

log = logging.getLogger(__name__)


ANNOTATION_SPLITS = ("train", "val")


class RootPainterSource(SplitByFolder):
    """Train = `annotations/train`, val = `annotations/val`, test = val (RootPainter keeps no test set).

    `dataset_dir` overrides where the images are (a project copied away from its sync directory);
    `skip_empty` drops annotations with no painted pixel, which would only add ignored pixels.
    """

    split_folders = ANNOTATION_SPLITS

    def __init__(
        self,
        project_file: str | Path,
        dataset_dir: str | Path | None = None,
        skip_empty: bool = True,
        mask_threshold: int = 127,
    ) -> None:
        self.project_file = _project_file(Path(project_file).expanduser())
        self.root = self.project_file  # what logs and errors name as "the data"
        self.dataset_dir_override = Path(dataset_dir).expanduser() if dataset_dir else None
        self.skip_empty = skip_empty
        self.mask_threshold = mask_threshold
        self._project: dict | None = None
        self._which: dict[str, str] = {}
        self._splits: dict[str, list[Sample]] | None = None

    # --- the project file -------------------------------------------------------------------------------
    @property
    def project(self) -> dict:
        if self._project is None:
            self._project = _read_project_file(self.project_file)
        return self._project

    @property
    def project_dir(self) -> Path:
        return self.project_file.parent

    @property
    def sync_dir(self) -> Path:
        """The sync directory: the project folder minus its "location" (default `projects/<name>`)."""
        location = PurePosixPath(str(self.project.get("location") or f"projects/{self.project_dir.name}"))
        folder = self.project_dir.resolve()
        if len(folder.parts) > len(location.parts) and folder.parts[-len(location.parts) :] == location.parts:
            return folder.parents[len(location.parts) - 1]
        return folder.parent.parent  # the project was renamed or moved: assume <sync>/projects/<name>

    @property
    def dataset_dir(self) -> Path:
        if self.dataset_dir_override is not None:
            return self.dataset_dir_override
        dataset = self.project.get("dataset")
        if not dataset:
            raise DataLayoutError(f'{self.project_file}: no "dataset" key; pass data.source.dataset_dir=DIR')
        return self.sync_dir / "datasets" / PurePosixPath(str(dataset))

    # --- the FolderSource interface ---------------------------------------------------------------------
    def match(self) -> tuple[dict[str, Sample], list[str]]:
        """Annotated images by stem, and one problem line per annotation without an image or duplicated."""
        dataset_dir = self.dataset_dir
        if not dataset_dir.is_dir():
            raise DataLayoutError(
                f"{dataset_dir}: the image folder of {self.project_file} does not exist "
                f'("dataset": {self.project.get("dataset")!r}, relative to <sync>/datasets); '
                "pass data.source.dataset_dir=DIR where the images are"
            )
        if not (self.project_dir / "annotations").is_dir():
            raise DataLayoutError(f"{self.project_dir / 'annotations'}: no annotations folder next to the project file")
        images, problems = files_by_stem(dataset_dir, "image")
        listed = [Path(str(name)).stem for name in self.project.get("file_names") or []]
        annotations: dict[str, tuple[str, Path]] = {}
        for split in ANNOTATION_SPLITS:
            folder = self.project_dir / "annotations" / split
            if not folder.is_dir():
                continue
            found, dup = files_by_stem(folder, "annotation")
            problems += dup
            for stem, path in found.items():
                if stem in annotations:
                    problems.append(
                        f"{path} and {annotations[stem][1]}: the image {stem!r} is annotated in both train and val; "
                        "delete one"
                    )
                    continue
                annotations[stem] = (split, path)
        samples: dict[str, Sample] = {}
        self._which = {}
        empty: list[str] = []
        for stem, (split, path) in sorted(annotations.items()):
            if stem not in images:
                problems.append(f"{path}: annotation has no image {stem}.* in {dataset_dir}")
                continue
            if self.skip_empty and _is_empty(path, self.mask_threshold):
                empty.append(stem)
                continue
            samples[stem] = Sample(stem, images[stem], path)
            self._which[stem] = split
        unannotated = [s for s in (listed or images) if s not in annotations]
        log.info(
            "%s: %d annotated image(s) (%d train, %d val); %d of the project's images have no annotation yet and "
            "are skipped%s",
            self.project_file,
            len(samples),
            sum(v == "train" for v in self._which.values()),
            sum(v == "val" for v in self._which.values()),
            len(unannotated),
            f"; {len(empty)} empty annotation(s) skipped: {empty[:5]}" if empty else "",
        )
        return samples, problems

    def samples(self) -> dict[str, Sample]:
        samples, problems = self.match()
        if problems:
            raise DataLayoutError(
                f"{len(problems)} problem(s) in RootPainter project {self.project_file}:\n  "
                + "\n  ".join(problems[:20])
            )
        if not samples:
            raise DataLayoutError(
                f"{self.project_dir / 'annotations'}: no annotated image yet (annotations/train/*.png or "
                f"annotations/val/*.png matching an image of {self.dataset_dir} by stem)"
            )
        return samples

    def _split_origin(self) -> Path:
        return self.project_file


def _project_file(path: Path) -> Path:
    """A project folder stands for the one .seg_proj file in it."""
    if not path.is_dir():
        return path
    found = sorted(path.glob("*.seg_proj"))
    if len(found) != 1:
        raise DataLayoutError(f"{path}: a folder, not a .seg_proj file (it holds {len(found)} .seg_proj files)")
    return found[0]


def _read_project_file(path: Path) -> dict:
    if not path.is_file():
        raise DataLayoutError(f"{path}: no such RootPainter project file (set data.root=PATH/TO/<name>.seg_proj)")
    try:
        project = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataLayoutError(f"{path}: not a RootPainter project file (invalid JSON: {error})") from error
    if not isinstance(project, dict):
        raise DataLayoutError(f"{path}: not a RootPainter project file (expected a JSON object)")
    names = project.get("file_names", [])
    if not isinstance(names, list) or any(Path(str(n)).suffix.lower() not in IMAGE_SUFFIXES for n in names):
        bad = [n for n in names if Path(str(n)).suffix.lower() not in IMAGE_SUFFIXES] if isinstance(names, list) else []
        log.warning('%s: "file_names" holds entries that are not images: %s', path, bad[:5] or names)
    return project


def _is_empty(path: Path, threshold: int) -> bool:
    return bool((read_mask(path, threshold) == IGNORE_INDEX).all())
