"""The command corpus: bad inputs at the level of a command line, the kinds issue 26 found (its third hostile
round), one case each. The files corpus (benchmarks/bad_input_corpus.py) holds bad images and masks; this one
holds what a careless or unlucky user types or points a command at:

- settings: yes/no/on/off booleans, numbers of the wrong type or range, NaN and inf; a refusal names the key;
- layout: an output on an input (by path or by a name pattern), a non-empty folder synthesize did not make, two
  inputs with the same image names into one output, predict's own outputs as inputs, a shard alone, a step that
  would take hours;
- clicks: RootSAM `prompts=` files with clicks outside the image, NaN, malformed, missing, for a U-Net;
- report, study, export, download: run folders, tables, checkpoints and markers that are not what the command
  reads.

Each case builds its files in its own folder (`setup`), gives the command's Hydra overrides, and says what must
happen: a refusal (exit 2, one paragraph naming the key or file, nothing written where `absent` says) or a
right output (`check`); in every case no file the setup made may change. benchmarks/bad_command_runner.py runs
them; benchmarks/bad_inputs.py and tests/cli/test_bad_commands.py use both."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from functools import partial
from pathlib import Path

import numpy as np
from bad_command_runner import INTERRUPTED, CommandCase, Kit, quoted
from PIL import Image

from rootseg.config.run_config import compose_task
from rootseg.synthetic.generator import generate_sample

SCAN = (48, 56)  # (H, W) of the ordinary scans: one tile of unet_demo


def scan(path: Path, seed: int = 0, size: tuple[int, int] = SCAN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(generate_sample(seed, size).image).save(path)
    return path


def bar_mask(path: Path, size: tuple[int, int] = (40, 50)) -> np.ndarray:
    """A 0/255 mask holding one vertical root 4 px wide and 20 px long."""
    mask = np.zeros(size, np.uint8)
    mask[10:30, 20:24] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)
    return mask > 0


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def predict_args(kit: Kit, input_: Path, output: Path, *extra: str, ckpt: Path | None = None) -> list[str]:
    ckpt = ckpt or kit.unet
    return [f"ckpt_path={quoted(ckpt)}", f"input={quoted(input_)}", f"output={quoted(output)}", "device=cpu", *extra]


def predict_here(kit: Kit, input_: Path, output: Path, *extra: str) -> None:
    """An earlier predict run, as the user made it (the library call the command makes)."""
    from rootseg.inference.folder import predict

    cfg = compose_task("predict", predict_args(kit, input_, output, *extra), output.parent / "earlier_run")
    with contextlib.redirect_stdout(io.StringIO()):  # its summary line is not the case's output
        predict(cfg)


# -- settings ------------------------------------------------------------------------------------------------------
def _predict_setting(*settings: str):
    def setup(folder: Path, kit: Kit) -> list[str]:
        scan(folder / "scans" / "a.png")
        return predict_args(kit, folder / "scans", folder / "out", *settings)

    return setup


def _only_the_mask(folder: Path, text: str) -> str | None:
    written = sorted(p.name for p in (folder / "out").glob("a*"))
    if written != ["a.png"]:
        return f"wrote {written}, expected only a.png (rve=no save_overlay=no save_rootpainter=off)"
    return None if len(rows(folder / "out" / "results.csv")) == 1 else "results.csv does not hold one row"


def _train_setting(setting: str):
    return lambda folder, kit: ["+experiment=unet_demo", f"paths.log_dir={quoted(folder / 'logs')}", setting]


def _eval_setting(setting: str):
    return lambda folder, kit: [f"ckpt_path={quoted(kit.unet)}", setting]


def _export_setting(setting: str):
    return lambda folder, kit: [f"ckpt_path={quoted(kit.unet)}", f"output={quoted(folder / 'model.onnx')}", setting]


def _annotate_setting(setting: str):
    def setup(folder: Path, kit: Kit) -> list[str]:
        scan(folder / "project" / "images" / "a.png")
        return [f"project={quoted(folder / 'project')}", "port=0", setting]

    return setup


def _measure_setting(setting: str):
    def setup(folder: Path, kit: Kit) -> list[str]:
        bar_mask(folder / "masks" / "a.png")
        return [f"input={quoted(folder / 'masks')}", f"output={quoted(folder / 'traits.csv')}", setting]

    return setup


def _synthesize_setting(*settings: str):
    return lambda folder, kit: [f"output={quoted(folder / 'set')}", *settings]


def settings_cases() -> list[CommandCase]:
    rule = "must be true or false (also yes/no, on/off, 1/0), got"

    def case(name, command, setup, says, absent=()):
        return CommandCase(name, "settings", command, setup, (says,), absent=absent)

    out, logs, onnx, synth = ("out",), ("logs",), ("model.onnx",), ("set",)
    return [
        CommandCase(
            "predict_no_off_read_as_false",
            "settings",
            "predict",
            _predict_setting("rve=no", "save_overlay=no", "save_rootpainter=off"),
            exit_code=0,
            check=_only_the_mask,
        ),
        case("predict_rve_maybe", "predict", _predict_setting("rve=maybe"), f"rve {rule} 'maybe'", out),
        case("predict_tta_si", "predict", _predict_setting("tta=si"), f"tta {rule} 'si'", out),
        case("predict_dpi_inf", "predict", _predict_setting("dpi=inf"), "dpi must be a finite number > 0", out),
        case("predict_mm_per_pixel_nan", "predict", _predict_setting("mm_per_pixel=nan"), "got nan", out),
        case(
            "predict_min_free_disk_abc",
            "predict",
            _predict_setting("min_free_disk_mb=abc"),
            "min_free_disk_mb must be a finite number (MB) >= 0 or null, got 'abc'",
            out,
        ),
        case(
            "predict_batch_size_fraction",
            "predict",
            _predict_setting("batch_size=1.5"),
            "batch_size must be a whole number or null, got 1.5",
            out,
        ),
        case(
            "predict_step_abc", "predict", _predict_setting("step=abc"), "step must be a whole number, got 'abc'", out
        ),
        case(
            "train_max_epochs_abc",
            "train",
            _train_setting("trainer.max_epochs=abc"),
            "trainer.max_epochs must be a whole number >= -1 or null, got 'abc'",
            logs,
        ),
        case(
            "train_max_epochs_fraction",
            "train",
            _train_setting("trainer.max_epochs=1.5"),
            "trainer.max_epochs must be a whole number >= -1 or null, got 1.5",
            logs,
        ),
        case(
            "train_seed_abc", "train", _train_setting("seed=abc"), "seed must be a whole number >= 0, got 'abc'", logs
        ),
        case(
            "eval_figures_abc", "eval", _eval_setting("figures=abc"), "figures must be a whole number >= 0, got 'abc'"
        ),
        case(
            "eval_save_predictions_perhaps",
            "eval",
            _eval_setting("save_predictions=perhaps"),
            f"save_predictions {rule}",
        ),
        case("export_atol_negative", "export", _export_setting("atol=-1"), "atol must be a finite number", onnx),
        case("export_opset_7", "export", _export_setting("opset=7"), "opset=7: ", onnx),
        case(
            "annotate_max_upload_inf",
            "annotate",
            _annotate_setting("max_upload_mb=inf"),
            "max_upload_mb must be a finite number (MB) > 0, got inf",
            ("project/rootseg_annotate",),
        ),
        case("annotate_margin_abc", "annotate", _annotate_setting("margin=abc"), "margin must be a finite number"),
        case(
            "measure_dpi_inf",
            "measure",
            _measure_setting("dpi=inf"),
            "dpi must be a finite number > 0 or null, got inf",
        ),
        case(
            "measure_threshold_grey_level",
            "measure",
            _measure_setting("threshold=127"),
            "threshold must be",
            ("traits.csv",),
        ),
        case(
            "synthesize_size_huge", "synthesize", _synthesize_setting("size=[100000,100000]"), "over the budget", synth
        ),
        case("synthesize_n_abc", "synthesize", _synthesize_setting("n=abc"), "n must be a whole number >= 1", synth),
        case(
            "synthesize_seed_negative",
            "synthesize",
            _synthesize_setting("seed=-1"),
            "seed must be a whole number",
            synth,
        ),
        case(
            "study_depth_offset_inf",
            "study",
            partial(_study, depth_offset="inf"),
            "depth_offset_cm must be",
            ("study",),
        ),
        case(
            "report_figures_abc",
            "report",
            partial(_report, figures="abc"),
            "figures must be a whole number",
            ("report",),
        ),
        case("download_verify_maybe", "download", partial(_download, extra=("verify=maybe",)), f"verify {rule}"),
    ]


# -- study, report and download inputs ------------------------------------------------------------------------------
def ci600(tube: int, location: int, date: str) -> str:
    return f"Untitled_T{tube:03d}_L{location:03d}_{date}_084840_002_Untitled.jpg"


STUDY_ROWS = [(ci600(1, 2, "03.04.17"), 100.0), (ci600(1, 2, "10.04.17"), 140.0), (ci600(7, 3, "05.04.17"), 40.0)]


def _study(
    folder: Path, kit: Kit, names: list[tuple[str, float]] | None = None, depth_offset: str | None = None, *extra: str
) -> list[str]:
    table = folder / "results.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "length_mm", "rld_cm_per_cm3"])
        writer.writerows((name, length, length / 100) for name, length in (names or STUDY_ROWS))
    offset = [f"depth_offset_cm={depth_offset}"] if depth_offset else []
    return [
        f"input={quoted(table)}",
        f"output={quoted(folder / 'study')}",
        "spacing_cm=10",
        "angle_deg=90",
        *offset,
        *extra,
    ]


def _report(folder: Path, kit: Kit, damage=None, figures: str | None = None) -> list[str]:
    run = folder / "eval_run"
    shutil.copytree(kit.eval_run, run)
    if damage:
        damage(run)
    extra = [f"figures={figures}"] if figures else []
    return [f"runs=[{quoted(run)}]", f"output={quoted(folder / 'report')}", *extra]


def _download(folder: Path, kit: Kit, marker: str | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """A dataset folder with download's marker file holding `marker`; the URL is a closed port, never reached."""
    from rootseg.sources.download import MARKER

    dest = folder / "segroot"
    dest.mkdir()
    if marker is not None:
        (dest / MARKER).write_text(marker)
    return ["dataset=segroot", f"output={quoted(dest)}", "url=http://127.0.0.1:9/x.zip", "verify=false", *extra]


def _summary(run: Path, change) -> None:
    summary = json.loads((run / "summary.json").read_text())
    change(summary)
    (run / "summary.json").write_text(json.dumps(summary))


def _rename(run: Path, name: str) -> None:
    _summary(run, lambda summary: summary["model"].update(experiment_name=name))


def _two_named_runs(folder: Path, kit: Kit) -> list[str]:
    runs = [folder / "run_a", folder / "run_b"]
    for run, name in zip(runs, ["a|b", "two\nlines"], strict=True):
        shutil.copytree(kit.eval_run, run)
        _rename(run, name)
    return [f"runs=[{','.join(quoted(run) for run in runs)}]", f"output={quoted(folder / 'report')}", "figures=0"]


def _tables_whole(folder: Path, text: str) -> str | None:
    """Every table row of comparison.md has its header's number of cells; the names are there, escaped."""
    lines = (folder / "report" / "comparison.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    widths, header = [], 0
    for line in table:
        cells = line.replace("\\|", "").count("|")
        if not set(line) - set("|-: "):
            continue  # the separator row
        header = cells if line.startswith("| method") else header
        widths.append(cells == header)
    if not table or not all(widths):
        return "a table row of comparison.md has more or fewer cells than its header"
    if not any("a\\|b" in line for line in table) or not any("two lines" in line for line in table):
        return "the run names are not in the table"
    return None


def data_cases() -> list[CommandCase]:
    def report(name, damage, says):
        return CommandCase(name, "report", "report", partial(_report, damage=damage), says, absent=("report",))

    def study(name, names, says):
        return CommandCase(name, "study", "study", partial(_study, names=names), says, absent=("study",))

    marker = "{dir}/segroot/.rootseg-download.json: not the record rootseg.download writes"
    return [
        report(
            "report_summary_list",
            lambda r: (r / "summary.json").write_text("[1, 2]"),
            ("{dir}/eval_run", "summary.json: holds a JSON list"),
        ),
        report(
            "report_summary_not_utf8",
            lambda r: (r / "summary.json").write_bytes(b'{"a": "\xff\xfe"}'),
            ("{dir}/eval_run", "not valid UTF-8 JSON"),
        ),
        report(
            "report_no_f1_column",
            lambda r: (r / "per_image.csv").write_text("name,tp\nimg_0,1\n"),
            ("{dir}/eval_run", "per_image.csv: no f1 column"),
        ),
        report(
            "report_empty_f1_cell",
            lambda r: (r / "per_image.csv").write_text("name,f1\nimg_0,0.5\nimg_1,\n"),
            ("{dir}/eval_run", "line 3 (img_1): f1 is ''"),
        ),
        report("report_not_a_run", lambda r: shutil.rmtree(r), ("{dir}/eval_run",)),
        CommandCase(
            "report_pipe_and_newline_in_names", "report", "report", _two_named_runs, exit_code=0, check=_tables_whole
        ),
        CommandCase(
            "report_names_mismatch",
            "report",
            "report",
            lambda folder, kit: [*_report(folder, kit), "names=[a,b]"],
            ("2 names for 1 runs",),
            absent=("report",),
        ),
        study("study_duplicate_rows", STUDY_ROWS + STUDY_ROWS[:1], ("1 image name(s) have more than one row",)),
        CommandCase(
            "study_depth_inf_in_name",
            "study",
            "study",
            partial(_depth_names, names=[("T1_D10_20200101", 1.0), ("T2_Dinf_20200101", 2.0)]),
            ("T2_Dinf_20200101: depth 'inf' is not a finite number",),
            absent=("study",),
        ),
        CommandCase(
            "study_optional_depth_missing",
            "study",
            "study",
            partial(_depth_names, names=[("T1_D10_20200101", 1.0), ("T1_L2_20200101", 2.0)]),
            exit_code=0,
            check=_depths_10,
        ),
        CommandCase(
            "study_no_depth_nor_location",
            "study",
            "study",
            partial(_depth_names, names=[("T1_D10_20200101", 1.0), ("T2_20200101", 2.0)]),
            ("no location or depth in 1 matched name", "T2_20200101"),
            absent=("study",),
        ),
        CommandCase(
            "study_missing_table",
            "study",
            "study",
            lambda folder, kit: [f"input={quoted(folder / 'resluts.csv')}"],
            ("{dir}/resluts.csv",),
            absent=("study",),
        ),
        CommandCase(
            "download_marker_list", "download", "download", partial(_download, marker='["segroot"]'), (marker,)
        ),
        CommandCase(
            "download_marker_not_json", "download", "download", partial(_download, marker="not json"), (marker,)
        ),
        CommandCase(
            "download_sha256_and_no_verify",
            "download",
            "download",
            partial(_download, extra=("sha256=" + "0" * 64,)),
            ("sha256= and verify=false contradict each other",),
        ),
        CommandCase(
            "download_unknown_dataset",
            "download",
            "download",
            lambda folder, kit: [*_download(folder, kit)[1:], "dataset=segrot"],
            ("dataset must be one of",),
        ),
    ]


DEPTH_PATTERN = r"^T(?P<tube>\d+)(_D(?P<depth>\w+))?(_L(?P<location>\d+))?_(?P<date>\d{8})"


def _depth_names(folder: Path, kit: Kit, names: list[tuple[str, float]]) -> list[str]:
    args = _study(folder, kit, names)
    return [
        *args[:2],
        f"pattern='{DEPTH_PATTERN}'",
        "date_format='%Y%m%d'",
        "spacing_cm=10",
        "angle_deg=90",
        "value=length_mm",
    ]


def _depths_10(folder: Path, text: str) -> str | None:
    """T1_D10 is at 10 cm by its depth; T1_L2 at location 2 x 10 cm spacing, straight down: 20 cm."""
    depths = {row["name"]: float(row["depth_cm"]) for row in rows(folder / "study" / "images.csv")}
    expected = {"T1_D10_20200101": 10.0, "T1_L2_20200101": 20.0}
    return None if depths == expected else f"depths {depths}, expected {expected}"


# -- folder layouts ------------------------------------------------------------------------------------------------
def _measure_onto(folder: Path, kit: Kit, link: bool = False) -> list[str]:
    bar_mask(folder / "masks" / "victim.png")
    output = folder / "masks" / "victim.png"
    if link:
        output = folder / "masks" / "traits.csv"
        os.symlink(folder / "masks" / "victim.png", output)
    return [f"input={quoted(folder / 'masks')}", f"output={quoted(output)}"]


def _user_folder(folder: Path, kit: Kit) -> list[str]:
    (folder / "thesis").mkdir()
    (folder / "thesis" / "chapter1.tex").write_text("years of work")
    return [f"output={quoted(folder / 'thesis')}", "n=2", "size=[32,32]"]


def _user_file(folder: Path, kit: Kit) -> list[str]:
    (folder / "notes.txt").write_text("keep")
    return [f"output={quoted(folder / 'notes.txt')}", "n=2", "size=[32,32]"]


def _set_with_a_user_file(folder: Path, kit: Kit) -> list[str]:
    from rootseg.synthetic.dataset import write_dataset

    made = write_dataset(folder / "set", 2, (32, 32), seed=1)
    (made / "images" / "my_scan.png").write_bytes(b"mine")
    return [f"output={quoted(made)}", "n=3", "size=[32,32]"]


def _named_like_outputs(folder: Path, kit: Kit) -> list[str]:
    for seed, name in enumerate(("a.png", "a_rootpainter.png", "a_rve.png")):
        scan(folder / "scans" / name, seed)
    return predict_args(kit, folder / "scans", folder / "out", "rve=true")


def _two_tubes(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "tubeA" / "img001.png", 1)
    scan(folder / "tubeB" / "img001.png", 2)
    predict_here(kit, folder / "tubeA", folder / "out")
    return predict_args(kit, folder / "tubeB", folder / "out")


def _two_tubes_at_once(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "tubeA" / "img001.png", 1)
    scan(folder / "tubeB" / "img001.png", 2)
    return predict_args(kit, folder / "tube*" / "img001.png", folder / "out")


def _foreign_results(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "scans" / "a.png")
    (folder / "thesis").mkdir()
    (folder / "thesis" / "results.csv").write_text("my own table\n")
    return predict_args(kit, folder / "scans", folder / "thesis")


def _output_is_input(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "scans" / "a.png")
    return predict_args(kit, folder / "scans", folder / "scans")


def _own_outputs_as_input(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "scans" / "a.png")
    predict_here(kit, folder / "scans", folder / "out", "rve=true")
    return predict_args(kit, folder / "out", folder / "out")


def _measure_rve(folder: Path, kit: Kit) -> list[str]:
    from rootseg.io.rhizovision import write_rhizovision_mask

    root = bar_mask(folder / "mask.png")
    os.unlink(folder / "mask.png")
    write_rhizovision_mask(folder / "out" / "a_rve.png", root)
    return [f"input={quoted(folder / 'out' / 'a_rve.png')}", f"output={quoted(folder / 'traits.csv')}"]


def _measured_the_root(folder: Path, text: str) -> str | None:
    """The bar is 4 x 20 px: 80 root pixels, not the 1920 of the white background."""
    measured = rows(folder / "traits.csv")
    pixels = float(measured[0]["projected_area_px2"]) if measured else None
    return None if pixels == 80 else f"projected_area_px2 {pixels}, expected the bar's 80"


def _shard_alone(folder: Path, kit: Kit) -> list[str]:
    for i in range(3):
        scan(folder / "scans" / f"s{i}.png", i)
    return predict_args(kit, folder / "scans", folder / "out", "shard=1/2")


def _one_row_s1(folder: Path, text: str) -> str | None:
    names = [row["name"] for row in rows(folder / "out" / "results.csv")]
    return None if names == ["s1.png"] else f"results.csv rows {names}, expected ['s1.png'] (shard 1/2 of 3)"


def _big_scan_step_1(folder: Path, kit: Kit) -> list[str]:
    scan(folder / "scans" / "big.png", 0, (512, 512))
    return predict_args(kit, folder / "scans", folder / "out", "step=1")


def _export_onto_checkpoint(folder: Path, kit: Kit) -> list[str]:
    ckpt = Path(shutil.copy(kit.unet, folder / "model.ckpt"))
    return [f"ckpt_path={quoted(ckpt)}", f"output={quoted(ckpt)}"]


def layout_cases() -> list[CommandCase]:
    def case(name, command, setup, says, absent=(), **kwargs):
        return CommandCase(name, "layout", command, setup, says, absent=absent, **kwargs)

    overwrite = "victim.png): writing it would overwrite"
    return [
        case("measure_output_on_its_mask", "measure", _measure_onto, ("{dir}/masks/victim.png", overwrite)),
        case("measure_output_linked_to_its_mask", "measure", partial(_measure_onto, link=True), (overwrite,)),
        case(
            "synthesize_into_user_folder",
            "synthesize",
            _user_folder,
            ("{dir}/thesis", "holds other files and no synthetic set"),
        ),
        case("synthesize_onto_a_file", "synthesize", _user_file, ("{dir}/notes.txt", "is a file")),
        case(
            "synthesize_set_with_user_file",
            "synthesize",
            _set_with_a_user_file,
            ("images/my_scan.png, which no set wrote",),
        ),
        case(
            "predict_inputs_named_like_outputs",
            "predict",
            _named_like_outputs,
            ("a_rootpainter.png would be both the mask of {dir}/scans/a_rootpainter.png",),
            ("out",),
        ),
        case(
            "predict_same_name_after_earlier_run",
            "predict",
            _two_tubes,
            ("{dir}/tubeB/img001.png (done earlier from {dir}/tubeA/img001.png)",),
        ),
        case(
            "predict_same_names_in_one_run", "predict", _two_tubes_at_once, ("would write the same outputs",), ("out",)
        ),
        case(
            "predict_folder_of_user_files",
            "predict",
            _foreign_results,
            ("holds 1 file(s) no predict run wrote", "results.csv"),
        ),
        case("predict_output_is_its_input", "predict", _output_is_input, ("{dir}/scans",)),
        case("predict_on_its_own_outputs", "predict", _own_outputs_as_input, ("{dir}/out",)),
        case("measure_rhizovision_mask", "measure", _measure_rve, (), exit_code=0, check=_measured_the_root),
        case(
            "predict_shard_alone",
            "predict",
            _shard_alone,
            ("other shards still owe 2",),
            exit_code=0,
            check=_one_row_s1,
        ),
        case(
            "predict_step_1_warns",
            "predict",
            _big_scan_step_1,
            ("step=1 makes 105,625 model passes per 512 x 512 image", "interrupted"),
            exit_code=INTERRUPTED,
            interrupt_on="model passes per",
        ),
        case("export_onto_its_checkpoint", "export", _export_onto_checkpoint, ("is also an input", "{dir}/model.ckpt")),
    ]


# -- RootSAM click files -------------------------------------------------------------------------------------------
def _clicks(folder: Path, kit: Kit, text: str, file: str = "clicks.csv", unet: bool = False) -> list[str]:
    scan(folder / "scans" / "a.png", 0, (40, 50))
    if text:
        (folder / file).write_text(text)
    ckpt = kit.unet if unet else kit.rootsam
    return predict_args(kit, folder / "scans", folder / "out", f"prompts={quoted(folder / file)}", ckpt=ckpt)


def clicks_cases() -> list[CommandCase]:
    def case(name, text, says, **kwargs):
        setup = partial(_clicks, text=text, **kwargs)
        return CommandCase(name, "clicks", "predict", setup, says, absent=("out/a.png",))

    where = "prompts={dir}/clicks.csv, line 3: "
    return [
        case(
            "clicks_outside_the_image",
            "image,x,y\na.png,10,20\na.png,50,3\n",
            (where + "the click x=50, y=3 is outside the image {dir}/scans/a.png",),
        ),
        case("clicks_negative", "image,x,y\na,10,20\na,-1,3\n", (where + "the click x=-1, y=3 is outside",)),
        case("clicks_nan", "image,x,y\na.png,1,2\na.png,nan,2\n", (where + "the click for image 'a.png' is at x=nan",)),
        case(
            "clicks_json_nan",
            '{"a.png": [[1, 2], [NaN, 2]]}',
            ("prompts={dir}/clicks.json, click 2 of 'a.png'",),
            file="clicks.json",
        ),
        case("clicks_without_y_column", "image,x\na.png,1\n", ("prompts={dir}/clicks.csv: cannot read clicks",)),
        case(
            "clicks_json_broken",
            '{"a.png": [[1, 2]',
            ("prompts={dir}/clicks.json: cannot read clicks",),
            file="clicks.json",
        ),
        case("clicks_file_missing", "", ("prompts={dir}/clicks.csv: no such file",)),
        case("clicks_for_a_unet", "image,x,y\na.png,1,2\n", ("a unet model cannot honour",), unet=True),
    ]


def make_command_corpus() -> list[CommandCase]:
    """Every case, in a stable order; names are unique."""
    cases = [*settings_cases(), *layout_cases(), *clicks_cases(), *data_cases()]
    assert len({case.name for case in cases}) == len(cases)
    return cases
