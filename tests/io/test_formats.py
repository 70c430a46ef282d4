"""RootPainter projects and the PRMI layout as data sources, and their Hydra configs."""

import json
import logging
import shutil

import hydra
import numpy as np
import pytest
from PIL import Image

from rootseg.io.arrays import IGNORE_INDEX
from rootseg.io.masks import read_mask, read_pair
from rootseg.sources.base import DataLayoutError
from rootseg.sources.prmi import PRMISource
from rootseg.sources.rootpainter import RootPainterSource

RED, GREEN, CLEAR = (255, 0, 0, 180), (0, 255, 0, 180), (0, 0, 0, 0)  # RootPainter's brush colours


def _annotation(path, h=16, w=20, root_rows=(0, 4), bg_rows=(4, 8)):
    """RootPainter RGBA: red root rows, green background rows, the rest transparent (unlabelled)."""
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[slice(*root_rows)] = RED
    rgba[slice(*bg_rows)] = GREEN
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)


def make_rootpainter_project(tmp_path, name="roots"):
    """<sync>/datasets/chicory/{a..e}.jpg, <sync>/projects/roots/roots.seg_proj, annotations a, b (train) c (val)."""
    sync = tmp_path / "sync"
    dataset = sync / "datasets" / "chicory"
    dataset.mkdir(parents=True)
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.png"]
    for i, fname in enumerate(names):
        Image.fromarray(np.full((16, 20, 3), 40 * i, np.uint8)).save(dataset / fname)
    project = sync / "projects" / name
    for sub in ("segmentations", "models", "messages", "logs"):
        (project / sub).mkdir(parents=True)
    _annotation(project / "annotations" / "train" / "a.png")
    _annotation(project / "annotations" / "train" / "b.png", root_rows=(10, 12))
    _annotation(project / "annotations" / "val" / "c.png")
    info = {
        "name": name,
        "dataset": "chicory",
        "original_model_file": "random weights",
        "location": f"projects/{name}",
        "file_names": ["d.jpg", "a.jpg", "c.jpg", "e.png", "b.jpg"],  # RootPainter shuffles them
    }
    (project / f"{name}.seg_proj").write_text(json.dumps(info, indent=4))
    return project / f"{name}.seg_proj"


def test_rootpainter_splits_and_masks(tmp_path, caplog):
    source = RootPainterSource(make_rootpainter_project(tmp_path))
    with caplog.at_level(logging.INFO, logger="rootseg.sources.rootpainter"):
        splits = source.splits()
    assert [s.name for s in splits["train"]] == ["a", "b"]
    assert [s.name for s in splits["val"]] == ["c"] and splits["test"] == splits["val"]
    assert "2 of the project's images have no annotation yet" in caplog.text
    assert source.dataset_dir == tmp_path / "sync" / "datasets" / "chicory"
    image, mask = read_pair(splits["train"][0].image_path, splits["train"][0].mask_path)
    assert image.shape == (16, 20, 3)
    assert (mask[:4] == 1).all() and (mask[4:8] == 0).all() and (mask[8:] == IGNORE_INDEX).all()


def test_rootpainter_skips_empty_and_names_orphans(tmp_path):
    project_file = make_rootpainter_project(tmp_path)
    annotations = project_file.parent / "annotations"
    Image.fromarray(np.zeros((16, 20, 4), np.uint8), "RGBA").save(annotations / "train" / "d.png")
    assert [s.name for s in RootPainterSource(project_file).split("train")] == ["a", "b"]
    assert "d" in RootPainterSource(project_file, skip_empty=False).samples()
    _annotation(annotations / "val" / "ghost.png")
    with pytest.raises(DataLayoutError, match="ghost.png: annotation has no image"):
        RootPainterSource(project_file).splits()
    _annotation(annotations / "val" / "a.png")
    assert any("annotated in both train and val" in p for p in RootPainterSource(project_file).match()[1])


def test_rootpainter_project_moved_needs_dataset_dir(tmp_path):
    project_file = make_rootpainter_project(tmp_path)
    moved = shutil.copytree(project_file.parent, tmp_path / "elsewhere" / "copy")
    with pytest.raises(DataLayoutError, match="data.source.dataset_dir"):
        RootPainterSource(moved / project_file.name).splits()
    source = RootPainterSource(moved, dataset_dir=tmp_path / "sync" / "datasets" / "chicory")  # a folder works too
    assert len(source.split("train")) == 2
    with pytest.raises(DataLayoutError, match="not a RootPainter project file"):
        bad = tmp_path / "bad.seg_proj"
        bad.write_text("{nope")
        RootPainterSource(bad).splits()


SPECIES = {"Cotton": "Cotton_736x552_DPI150", "Papaya": "Papaya_736x552_DPI150"}


def make_prmi(tmp_path, with_json=("Cotton",)):
    """PRMI_official/{train,val,test}/images|masks_pixel_gt/<folder>/ with two images per split and species."""
    base = tmp_path / "PRMI_official"
    for split_index, split in enumerate(("train", "val", "test")):
        for species, folder in SPECIES.items():
            entries = []
            for k in range(2):
                stem = f"{species}_T{split_index}{k:02d}_L{k + 3:03d}_2017.06.0{k + 1}_101010_ABC_DPI150"
                image_dir, mask_dir = base / split / "images" / folder, base / split / "masks_pixel_gt" / folder
                image_dir.mkdir(parents=True, exist_ok=True)
                mask_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(image_dir / f"{stem}.jpg")
                mask = np.zeros((12, 16), np.uint8)
                mask[:, 3:5] = 255 * (k == 0)  # the first image of each pair holds root
                Image.fromarray(mask).save(mask_dir / f"GT_{stem}.png")
                entries.append(
                    {
                        "image_name": f"{stem}.jpg",
                        "binary_mask": f"GT_{stem}.png",
                        "crop": species,
                        "has_root": int(k == 0),
                        "location": "Florida",
                        "tube_num": f"T{split_index}{k:02d}",
                        "depth": f"L{k + 3:03d}",
                        "date": f"2017.06.0{k + 1}",
                        "dpi": 150,
                    }
                )
            # an image without a pixel mask (PRMI has ~9K): skipped, not an error
            Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(image_dir / f"{species}_T9_L1_2017.01.01_nomask.jpg")
            if species in with_json:
                labels = base / split / "labels_image_gt"
                labels.mkdir(exist_ok=True)
                (labels / f"{folder}_{split}.json").write_text(json.dumps(entries))
    return tmp_path


def test_prmi_species_filter_splits_and_metadata(tmp_path):
    root = make_prmi(tmp_path)
    everything = PRMISource(root)  # the parent of PRMI_official works as root
    assert {k: len(v) for k, v in everything.splits().items()} == {"train": 4, "val": 4, "test": 4}
    cotton = PRMISource(root / "PRMI_official", species=["cotton"])
    splits = cotton.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 2, "test": 2}
    name = splits["val"][0].name
    meta = cotton.metadata[name]
    assert meta["species"] == "Cotton" and meta["split"] == "val" and meta["tube"] == "T100"
    assert meta["depth"] == "L003" and meta["has_root"] == 1 and meta["location"] == "Florida"
    papaya = PRMISource(root, species=["Papaya_736x552_DPI150"])  # no JSON: parsed from the file name
    meta = papaya.metadata[papaya.split("train")[1].name]
    assert (
        meta["species"] == "Papaya" and meta["tube"] == "T001" and meta["depth"] == "L004" and meta["has_root"] is None
    )
    assert set(np.unique(read_mask(papaya.split("train")[0].mask_path))) == {0, 1}
    with pytest.raises(DataLayoutError, match="no PRMI folder for species \\['Maize'\\]"):
        PRMISource(root, species=["Maize"]).splits()


def test_prmi_only_with_root_uses_metadata_or_masks(tmp_path):
    root = make_prmi(tmp_path)
    rooted = PRMISource(root, only_with_root=True)  # Cotton by has_root, Papaya by reading its masks
    assert {k: len(v) for k, v in rooted.splits().items()} == {"train": 2, "val": 2, "test": 2}
    orphan = root / "PRMI_official" / "test" / "masks_pixel_gt" / SPECIES["Cotton"] / "GT_lost.png"
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(orphan)
    with pytest.raises(DataLayoutError, match="GT_lost.png: mask has no image"):
        PRMISource(root).splits()


def test_rootpainter_and_prmi_configs_compose_and_instantiate(compose, tmp_path):
    project_file = make_rootpainter_project(tmp_path)
    cfg = compose("train", ["+experiment=unet_demo", "data=rootpainter", f"data.root={project_file}"])
    assert cfg.data.tile_in == 276 and cfg.data.source.project_file == str(project_file)
    datamodule = hydra.utils.instantiate(cfg.data)
    assert isinstance(datamodule.source, RootPainterSource) and len(datamodule.source.split("train")) == 2

    prmi_root = make_prmi(tmp_path / "prmi")
    cfg = compose(
        "train", ["+experiment=unet_demo", "data=prmi", f"data.root={prmi_root}", "data.source.species=[Cotton]"]
    )
    datamodule = hydra.utils.instantiate(cfg.data)
    assert isinstance(datamodule.source, PRMISource) and len(datamodule.source.split("test")) == 2
