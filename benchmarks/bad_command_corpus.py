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
import re
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


def bar(size: tuple[int, int] = (40, 50)) -> np.ndarray:
    """One vertical root 4 px wide and 20 px long: 80 root pixels."""
    root = np.zeros(size, bool)
    root[10:30, 20:24] = True
    return root


def bar_mask(path: Path) -> Path:
    """`bar()` as a 0/255 PNG mask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(bar().astype(np.uint8) * 255).save(path)
    return path


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


# -- study, report and download inputs ------------------------------------------------------------------------------
def ci600(tube: int, location: int, date: str) -> str:
    return f"Untitled_T{tube:03d}_L{location:03d}_{date}_084840_002_Untitled.jpg"


STUDY_ROWS = [(ci600(1, 2, "03.04.17"), 100.0), (ci600(1, 2, "10.04.17"), 140.0), (ci600(7, 3, "05.04.17"), 40.0)]


def _study(folder: Path, kit: Kit, names: list[tuple[str, float]] | None = None, *extra: str) -> list[str]:
    """A per-image table (name, length_mm, rld_cm_per_cm3) as predict or measure writes one; CI-600 names unless
    `names` (name, length) are given."""
    table = folder / "results.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "length_mm", "rld_cm_per_cm3"])
        writer.writerows((name, length, length / 100) for name, length in (names or STUDY_ROWS))
    where = [f"input={quoted(table)}", f"output={quoted(folder / 'study')}"]
    return [*where, "spacing_cm=10", "angle_deg=90", *extra]


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


DEPTH_PATTERN = r"^T(?P<tube>\d+)(_D(?P<depth>\w+))?(_L(?P<location>\d+))?_(?P<date>\d{8})"


def _depth_names(folder: Path, kit: Kit, names: list[tuple[str, float]]) -> list[str]:
    """Names with an optional depth group and an optional location group (DEPTH_PATTERN)."""
    pattern = [f"pattern='{DEPTH_PATTERN}'", "date_format='%Y%m%d'", "value=length_mm"]
    return [*_study(folder, kit, names), *pattern]


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

    write_rhizovision_mask(folder / "out" / "a_rve.png", bar())  # as predict rve=true writes it
    return [f"input={quoted(folder / 'out' / 'a_rve.png')}", f"output={quoted(folder / 'traits.csv')}"]


def _white_root_named_rve(folder: Path, kit: Kit) -> list[str]:
    bar_mask(folder / "masks" / "a_rve.png")  # an ordinary mask (root white) that only carries the name
    return [f"input={quoted(folder / 'masks' / 'a_rve.png')}", f"output={quoted(folder / 'traits.csv')}"]


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


# -- RootSAM click files -------------------------------------------------------------------------------------------
def _clicks(folder: Path, kit: Kit, text: str, file: str = "clicks.csv", unet: bool = False) -> list[str]:
    scan(folder / "scans" / "a.png", 0, (40, 50))
    if text:
        (folder / file).write_text(text)
    ckpt = kit.unet if unet else kit.rootsam
    return predict_args(kit, folder / "scans", folder / "out", f"prompts={quoted(folder / file)}", ckpt=ckpt)


# -- settings ------------------------------------------------------------------------------------------------------
def _predict_setting(folder: Path, kit: Kit, *settings: str) -> list[str]:
    scan(folder / "scans" / "a.png")
    return predict_args(kit, folder / "scans", folder / "out", *settings)


def _annotate_setting(folder: Path, kit: Kit, *settings: str) -> list[str]:
    scan(folder / "project" / "images" / "a.png")
    return [f"project={quoted(folder / 'project')}", "port=0", *settings]


def _measure_setting(folder: Path, kit: Kit, *settings: str) -> list[str]:
    bar_mask(folder / "masks" / "a.png")
    return [f"input={quoted(folder / 'masks')}", f"output={quoted(folder / 'traits.csv')}", *settings]


#: per command: the setup a setting is added to, and what a refused setting must not have written
SETTING_SETUPS = {
    "predict": (_predict_setting, ("out",)),
    "train": (lambda f, kit, *s: ["+experiment=unet_demo", f"paths.log_dir={quoted(f / 'logs')}", *s], ("logs",)),
    "eval": (lambda f, kit, *s: [f"ckpt_path={quoted(kit.unet)}", *s], ()),
    "export": (lambda f, kit, *s: [f"ckpt_path={quoted(kit.unet)}", f"output={quoted(f / 'x.onnx')}", *s], ("x.onnx",)),
    "annotate": (_annotate_setting, ("project/rootseg_annotate",)),
    "measure": (_measure_setting, ("traits.csv",)),
    "synthesize": (lambda f, kit, *s: [f"output={quoted(f / 'set')}", *s], ("set",)),
    "study": (lambda f, kit, *s: _study(f, kit, None, *s), ("study",)),
    "report": (lambda f, kit, *s: [*_report(f, kit), *s], ("report",)),
    "download": (lambda f, kit, *s: [*_download(f, kit), *s], ()),
}
BOOL = "must be true or false (also yes/no, on/off, 1/0), got"

# fmt: off
#: (command, setting, what the refusal says): each names the key as the user typed it
REFUSED_SETTINGS = [
    ("predict", "rve=maybe", f"rve {BOOL} 'maybe'"),
    ("predict", "tta=si", f"tta {BOOL} 'si'"),
    ("predict", "dpi=inf", "dpi must be a finite number > 0 or null, got inf"),  # was named mm_per_pixel
    ("predict", "mm_per_pixel=nan", "mm_per_pixel must be a finite number > 0 or null, got nan"),
    ("predict", "min_free_disk_mb=abc", "min_free_disk_mb must be a finite number (MB) >= 0 or null, got 'abc'"),
    ("predict", "batch_size=1.5", "batch_size must be a whole number or null, got 1.5"),
    ("predict", "step=abc", "step must be a whole number, got 'abc'"),
    ("predict", "shard=2/2", "shard='2/2': give shard=K/N with 0 <= K < N"),
    ("predict", "length_method=bogus", "length_method must be one of"),
    ("train", "trainer.max_epochs=abc", "trainer.max_epochs must be a whole number >= -1 or null, got 'abc'"),
    ("train", "trainer.max_epochs=1.5", "trainer.max_epochs must be a whole number >= -1 or null, got 1.5"),
    ("train", "seed=abc", "seed must be a whole number >= 0, got 'abc'"),
    ("eval", "figures=abc", "figures must be a whole number >= 0, got 'abc'"),
    ("eval", "save_predictions=perhaps", f"save_predictions {BOOL} 'perhaps'"),
    ("export", "atol=-1", "atol must be a finite number (largest |exported - PyTorch|) > 0, got -1"),
    ("export", "opset=7", "opset=7: torch.onnx's exporter writes ONNX opset 18 or newer"),  # wrote 18, exit 0
    ("annotate", "max_upload_mb=inf", "max_upload_mb must be a finite number (MB) > 0, got inf"),
    ("annotate", "margin=abc", "margin must be a finite number (probability) > 0 and <= 1, got 'abc'"),
    ("annotate", "port=http", "port must be a whole number (0: any free port) >= 0 and <= 65535, got 'http'"),
    ("measure", "dpi=inf", "dpi must be a finite number > 0 or null, got inf"),
    ("measure", "threshold=127", "threshold must be a finite number (probability) > 0 and < 1, got 127"),
    ("synthesize", "size=[100000,100000]", "size=[100000,100000] is 10,000.0 MP per image, over the budget"),
    ("synthesize", "n=abc", "n must be a whole number >= 1, got 'abc'"),
    ("synthesize", "seed=-1", "seed must be a whole number >= 0, got -1"),
    ("study", "depth_offset_cm=inf", "depth_offset_cm must be a finite number (cm), got inf"),  # blamed the names
    ("report", "figures=abc", "figures must be a whole number >= 0, got 'abc'"),
    ("download", "verify=maybe", f"verify {BOOL} 'maybe'"),
    ("download", "dataset=segrot", "dataset must be one of chicory, prmi, segroot, got 'segrot'"),
]
# fmt: on


def _only_the_mask(folder: Path, text: str) -> str | None:
    written = sorted(p.name for p in (folder / "out").glob("a*"))
    if written != ["a.png"]:
        return f"wrote {written}, expected only a.png (rve=no save_overlay=no save_rootpainter=off)"
    return None if len(rows(folder / "out" / "results.csv")) == 1 else "results.csv does not hold one row"


def settings_cases() -> list[CommandCase]:
    """Each refused setting on its command (named `<command>_<key>_<value>`), the words Hydra does not read as
    booleans read right, and a mistyped key answered with the key meant."""
    cases = []
    for command, setting, says in REFUSED_SETTINGS:
        setup, absent = SETTING_SETUPS[command]
        cases.append(
            CommandCase(_name(command, setting), "settings", command, _with(setup, setting), (says,), absent=absent)
        )
    no_off = _with(_predict_setting, "rve=no", "save_overlay=no", "save_rootpainter=off")
    mistyped = ("hint: stpe is not a setting of this command; did you mean step?",)
    return [
        *cases,
        CommandCase("predict_no_off_read_as_false", "settings", "predict", no_off, exit_code=0, check=_only_the_mask),
        CommandCase(
            "predict_mistyped_key",
            "settings",
            "predict",
            _with(_predict_setting, "stpe=4"),
            mistyped,
            exit_code=1,
            absent=("out",),
        ),
    ]


def _name(command: str, setting: str) -> str:
    """`predict`, `shard=2/2` -> `predict_shard_2_2`: a name for test ids and `-k`."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{command}_{setting}").strip("_")


def _with(setup, *settings: str):
    """`setup` with these settings added to its overrides."""
    return lambda folder, kit: setup(folder, kit, *settings)


def _export_onto_check_image(folder: Path, kit: Kit) -> list[str]:
    image = scan(folder / "check.png")
    return [f"ckpt_path={quoted(kit.unet)}", f"check_image={quoted(image)}", f"output={quoted(image)}"]


def _damaged(write):
    """A report setup whose eval run folder `write` damages."""
    return partial(_report, damage=write)


def _text(name: str, text: str | bytes):
    def damage(run: Path) -> None:
        (run / name).write_bytes(text if isinstance(text, bytes) else text.encode())

    return _damaged(damage)


def _named_depths(*names: str):
    return partial(_depth_names, names=[(name, float(i + 1)) for i, name in enumerate(names)])


#: clicks in a CSV: a.png is 50 x 40 px, so x=50 and y=40 lie just outside
CLICKS = "image,x,y\na.png,10,20\n"
AT = "prompts={dir}/clicks.csv, line 3: "
MARKER = "{dir}/segroot/.rootseg-download.json: not the record rootseg.download writes"
RUN = "{dir}/eval_run"


# fmt: off
def layout_cases() -> list[CommandCase]:
    def case(name, command, setup, *says, **kwargs):
        return CommandCase(name, "layout", command, setup, says, **kwargs)

    overwrite = "victim.png): writing it would overwrite a file this command reads"
    foreign = "holds 1 file(s) no predict run wrote, of names predict would write (results.csv)"
    return [
        case("measure_output_on_its_mask", "measure", _measure_onto, "{dir}/masks/victim.png", overwrite),
        case("measure_output_linked_to_its_mask", "measure", partial(_measure_onto, link=True), overwrite),
        case("measure_rhizovision_mask", "measure", _measure_rve, exit_code=0, check=_measured_the_root),
        case("measure_white_root_mask_named_rve", "measure", _white_root_named_rve, "{dir}/masks/a_rve.png",
             "96 % of it is dark", exit_code=1),
        case("synthesize_into_user_folder", "synthesize", _user_folder, "{dir}/thesis is a folder that holds other"),
        case("synthesize_onto_a_file", "synthesize", _user_file, "{dir}/notes.txt is a file, not a folder"),
        case("synthesize_set_with_user_file", "synthesize", _set_with_a_user_file, "images/my_scan.png, which no set"),
        case("predict_inputs_named_like_outputs", "predict", _named_like_outputs,
             "a_rootpainter.png would be both the mask of {dir}/scans/a_rootpainter.png", absent=("out",)),
        case("predict_same_name_after_earlier_run", "predict", _two_tubes,
             "{dir}/tubeB/img001.png (done earlier from {dir}/tubeA/img001.png)"),
        case("predict_same_names_in_one_run", "predict", _two_tubes_at_once, "would write the same outputs",
             absent=("out",)),
        case("predict_into_user_folder", "predict", _foreign_results, "output={dir}/thesis " + foreign),
        case("predict_output_is_its_input", "predict", _output_is_input, "output={dir}/scans is the folder the input"),
        case("predict_on_its_own_outputs", "predict", _own_outputs_as_input, "output={dir}/out is the folder the"),
        case("predict_shard_alone", "predict", _shard_alone, "other shards still owe 2", exit_code=0,
             check=_one_row_s1),
        case("predict_step_1_warns", "predict", _big_scan_step_1, "step=1 makes 105,625 model passes per 512 x 512",
             exit_code=INTERRUPTED, interrupt_on="model passes per"),
        case("export_onto_its_checkpoint", "export", _export_onto_checkpoint, "is also an input", "{dir}/model.ckpt"),
        case("export_onto_its_check_image", "export", _export_onto_check_image, "is also an input", "{dir}/check.png"),
    ]


def clicks_cases() -> list[CommandCase]:
    def case(name, text, *says, **kwargs):
        setup = partial(_clicks, text=text, **kwargs)
        return CommandCase(name, "clicks", "predict", setup, says, absent=("out/a.png",))

    return [
        case("clicks_outside_the_image", CLICKS + "a.png,50,3\n",
             AT + "the click x=50, y=3 is outside the image {dir}/scans/a.png"),
        case("clicks_below_the_image", CLICKS + "a,4,40\n", AT + "the click x=4, y=40 is outside the image"),
        case("clicks_negative", CLICKS + "a,-1,3\n", AT + "the click x=-1, y=3 is outside the image"),
        case("clicks_nan", CLICKS + "a.png,nan,2\n", AT + "the click for image 'a.png' is at x=nan"),
        case("clicks_json_nan", '{"a.png": [[1, 2], [NaN, 2]]}', "prompts={dir}/clicks.json, click 2 of 'a.png'",
             file="clicks.json"),
        case("clicks_without_y_column", "image,x\na.png,1\n", "prompts={dir}/clicks.csv: cannot read clicks"),
        case("clicks_json_broken", '{"a.png": [[1, 2]', "prompts={dir}/clicks.json: cannot read clicks",
             file="clicks.json"),
        case("clicks_file_missing", "", "prompts={dir}/clicks.csv: no such file"),
        case("clicks_for_a_unet", CLICKS, "prompts={dir}/clicks.csv: a unet model cannot honour", unet=True),
    ]


def data_cases() -> list[CommandCase]:
    def case(name, command, setup, *says, **kwargs):
        return CommandCase(name, command, command, setup, says, absent=(command,) if command != "download" else ())

    def ok(name, command, setup, check):
        return CommandCase(name, command, command, setup, exit_code=0, check=check)

    return [
        case("report_summary_list", "report", _text("summary.json", "[1, 2]"), RUN, "summary.json: holds a JSON list"),
        case("report_summary_not_utf8", "report", _text("summary.json", b'{"a": "\xff"}'), RUN, "not valid UTF-8 JSON"),
        case("report_no_f1_column", "report", _text("per_image.csv", "name,tp\nimg_0,1\n"), RUN,
             "per_image.csv: no f1 column"),
        case("report_empty_f1_cell", "report", _text("per_image.csv", "name,f1\nimg_0,0.5\nimg_1,\n"), RUN,
             "line 3 (img_1): f1 is ''"),
        case("report_per_image_not_utf8", "report", _text("per_image.csv", b"name,f1\n\xffimg,0.5\n"), RUN,
             "not a readable UTF-8 CSV"),
        case("report_not_a_run", "report", _damaged(shutil.rmtree), RUN),
        case("report_names_mismatch", "report", lambda f, kit: [*_report(f, kit), "names=[a,b]"], "2 names for 1 runs"),
        ok("report_pipe_and_newline_in_names", "report", _two_named_runs, _tables_whole),
        case("study_duplicate_rows", "study", partial(_study, names=STUDY_ROWS + STUDY_ROWS[:1]),
             "{dir}/results.csv: 1 image name(s) have more than one row"),
        case("study_depth_inf_in_name", "study", _named_depths("T1_D10_20200101", "T2_Dinf_20200101"),
             "T2_Dinf_20200101: depth 'inf' is not a finite number"),
        case("study_no_depth_nor_location", "study", _named_depths("T1_D10_20200101", "T2_20200101"),
             "{dir}/results.csv: no location or depth in 1 matched name(s) (first: ['T2_20200101'])"),
        ok("study_optional_depth_missing", "study", _named_depths("T1_D10_20200101", "T1_L2_20200101"), _depths_10),
        case("study_missing_table", "study", lambda f, kit: [f"input={quoted(f / 'resluts.csv')}"], "{dir}/resluts"),
        case("download_marker_list", "download", partial(_download, marker='["segroot"]'), MARKER),
        case("download_marker_not_json", "download", partial(_download, marker="not json"), MARKER),
        case("download_marker_entries_not_a_list", "download",
             partial(_download, marker='{"name": "segroot", "entries": "images"}'), MARKER),
        case("download_sha256_and_no_verify", "download", partial(_download, extra=("sha256=" + "0" * 64,)),
             "sha256= and verify=false contradict each other"),
    ]
# fmt: on


def make_command_corpus() -> list[CommandCase]:
    """Every case, in a stable order; names are unique."""
    cases = [*settings_cases(), *layout_cases(), *clicks_cases(), *data_cases()]
    assert len({case.name for case in cases}) == len(cases)
    return cases
