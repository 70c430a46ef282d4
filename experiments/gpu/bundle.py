"""What the GPU machine lacks, in one git-ignored folder that travels with the command (`make gpu-bundle`).

The GPU machine (Python 3.12, x86_64, no network) has torch, lightning, torchmetrics, scikit-image, opencv,
tifffile, pandas and matplotlib, but not rootseg's configuration, augmentation and SAM packages. This writes

    .gpu-bundle/wheels/        hydra-core, omegaconf, antlr4, albumentations, albucore (+ pydantic and the
                               packages they need that the machine lacks), cma, iopath: wheels for CPython
                               3.12 manylinux x86_64 at the versions installed here; sam2 1.1.0 built as a
                               wheel with SAM2_BUILD_CUDA=0 (no CUDA extension: rootseg does not use it)
    .gpu-bundle/shared/datasets/segroot/
                               SegRoot's 39 train and 13 val scans as they are (JPEG) with split.json, the
                               masks as 1-bit PNG (18 MB of JPEG masks become ~2 MB); run.sh points
                               ROOTSEG_SHARED there, so `data=segroot` and the benchmarks' `--segroot` find it
    .gpu-bundle/MANIFEST.json  every file with its size and sha256, and the total

Every requirement of every wheel (evaluated for CPython 3.12 on Linux x86_64) must be another wheel here or
a package of the GPU machine's image (IMAGE_PACKAGES, from the device notes), or this stops and names it.
The bundle and the repository's tracked files together must stay within LIMIT_MB.

    python experiments/gpu/bundle.py                      # all of it into .gpu-bundle (make gpu-bundle)
    python experiments/gpu/bundle.py data DIR --scans 2 --crop 240 --crops 3    # run.sh --smoke's data

Only the standard library, pip, numpy and OpenCV: no rootseg import, so a restructured package cannot
break it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SEGROOT = Path(os.environ.get("ROOTSEG_SHARED", REPO.parent / "shared")) / "datasets" / "segroot"
LIMIT_MB = 60.0  # bundle + the repository's tracked files (the device call carries 64 MiB in all)

# packages with wheels on PyPI for cp312 manylinux x86_64, at the version installed here
BINARY = [
    "hydra-core",
    "omegaconf",
    "albumentations",
    "albucore",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    # pydantic needs typing-extensions >= 4.16; the image's may be older: a newer copy shadows it harmlessly
    "typing-extensions",
    "stringzilla",
    "simsimd",
    "cma",
]
# source-only on PyPI (or, for sam2, built without its CUDA extension): built here as pure-Python wheels
SOURCE = ["antlr4-python3-runtime", "iopath", "sam2"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
TARGET_ENV = {  # PEP 508 marker environment of the GPU machine
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}
# The GPU image's packages (/work/.library/device/KINDS.md, nvidia-h200, read on 2026-11-17), normalised names
IMAGE_PACKAGES = set(
    """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
    charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
    cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
    flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
    huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
    jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
    llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
    multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
    nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx
    optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
    prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
    pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
    scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
    sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
    tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision
    tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
    werkzeug wheel wrapt xarray xxhash yarl zipp""".split()  # noqa: SIM905 - the device notes' list, as written
)


class BundleError(RuntimeError):
    """A bundle that cannot be made as asked; the message says what to do."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        raise BundleError(
            f"{name} is not installed in this Python ({sys.executable}): the bundle carries the versions "
            "installed here, so run it with the project's environment (make gpu-bundle uses .venv)"
        ) from None


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise BundleError(f"{' '.join(command[:6])} ... failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def wheel_requirements(wheel: Path) -> tuple[str, str, list[str]]:
    """(normalised name, version, Requires-Dist lines) from a wheel's METADATA."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode("utf-8", "replace")
    fields = [line.split(":", 1) for line in text.split("\n\n", 1)[0].splitlines() if ":" in line]
    get = {k: v.strip() for k, v in fields if k in ("Name", "Version")}
    return normalise(get["Name"]), get["Version"], [v.strip() for k, v in fields if k == "Requires-Dist"]


def check_closure(wheels: list[Path]) -> list[str]:
    """Problems: requirements on the target that are neither bundled nor on the image, or unmet versions."""
    from pip._vendor.packaging.requirements import Requirement  # pip's vendored copy: always present

    bundled = {}
    for wheel in wheels:
        name, version, requires = wheel_requirements(wheel)
        if name in bundled:
            return [f"two wheels of {name}: {bundled[name][0]} and {version} (pip --target refuses to install both)"]
        bundled[name] = (version, requires)
    problems = []
    for name, (_, requires) in sorted(bundled.items()):
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
                continue
            dep = normalise(req.name)
            if dep in bundled:
                if req.specifier and not req.specifier.contains(bundled[dep][0], prereleases=True):
                    problems.append(f"{name} needs {line}, the bundle has {dep} {bundled[dep][0]}")
            elif dep not in IMAGE_PACKAGES:
                problems.append(f"{name} needs {line}: neither in the bundle nor on the GPU image")
    return problems


def build_wheels(dest: Path) -> list[Path]:
    """Download and build the wheels into `dest` (emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    pins = [f"{name}=={installed_version(name)}" for name in BINARY]
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    pip = [sys.executable, "-m", "pip"]
    print(f"downloading {len(pins)} wheels for cp312 manylinux x86_64: {' '.join(pins)}", flush=True)
    run(
        pip
        + ["download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
        + ["--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none"]
        + platform_args
        + ["-d", str(dest)]
        + pins
    )
    sources = [f"{name}=={installed_version(name)}" for name in SOURCE]
    print(f"building {' '.join(sources)} (sam2 with SAM2_BUILD_CUDA=0, no build isolation)", flush=True)
    # no build isolation: an isolated sam2 build pulls a CUDA torch (~2.5 GB) into the build environment
    env = {**os.environ, "SAM2_BUILD_CUDA": "0"}
    run(pip + ["wheel", "-q", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w", str(dest)] + sources, env)
    wheels = sorted(dest.glob("*.whl"))
    for wheel in wheels:
        tags = wheel.stem.split("-")[-3:]
        if tags[0] not in ("py3", "py2.py3", "cp312") or not ("any" in tags[2] or "x86_64" in tags[2]):
            raise BundleError(f"{wheel.name}: not a wheel for CPython 3.12 on Linux x86_64")
    problems = check_closure(wheels)
    if problems:
        raise BundleError("the wheels do not install on the GPU machine as they are:\n  " + "\n  ".join(problems))
    return wheels


def _root_crops(mask: Any, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of `count` non-overlapping size x size windows with the most root (a coarse grid)."""
    h, w = mask.shape
    ys = range(0, max(h - size, 0) + 1, size)
    xs = range(0, max(w - size, 0) + 1, size)
    scored = sorted(((int(mask[y : y + size, x : x + size].sum()), y, x) for y in ys for x in xs), reverse=True)
    return [(y, x) for _, y, x in scored[:count]]


def write_data(
    dest: Path,
    segroot: Path = SEGROOT,
    scans: int | None = None,
    crop: int | None = None,
    crops: int = 1,
) -> dict[str, int]:
    """SegRoot's train and val scans into `dest` (images/, masks/ as 1-bit PNG, split.json).

    `scans`: only the first train scan and the first `scans - 1` val scans (a smoke run's data); `crop`: cut
    each scan into its `crops` size x size windows with the most root (stems `<stem>_c<i>`), images as PNG.
    """
    import cv2
    import numpy as np
    from PIL import Image

    split_path = segroot / "split.json"
    if not split_path.is_file():
        raise BundleError(
            f"SegRoot not found at {segroot} (no split.json): set ROOTSEG_SHARED to the folder that holds "
            "datasets/segroot (../shared beside the repository by default)"
        )
    split = json.loads(split_path.read_text())
    chosen = {"train": list(split["train"]), "val": list(split["val"])}
    if scans is not None:
        if scans < 2:
            raise BundleError("--scans needs at least 2 (one train, one val)")
        chosen = {"train": chosen["train"][:1], "val": chosen["val"][: scans - 1]}
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    out_split: dict[str, list[str]] = {"train": [], "val": []}
    for part, stems in chosen.items():
        for stem in stems:
            image_path = segroot / "images" / f"{stem}.jpg"
            grey = cv2.imread(str(segroot / "masks" / f"{stem}-mask.jpg"), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise BundleError(f"{segroot / 'masks' / (stem + '-mask.jpg')}: missing or unreadable mask")
            root = grey > 127  # SegRoot's rule (README of the data set)
            if crop is None:
                shutil.copyfile(image_path, dest / "images" / image_path.name)
                Image.fromarray(root).save(dest / "masks" / f"{stem}-mask.png", optimize=True)
                out_split[part].append(stem)
                continue
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            for i, (y, x) in enumerate(_root_crops(root, crop, crops)):
                name = f"{stem}_c{i}"
                cv2.imwrite(str(dest / "images" / f"{name}.png"), image[y : y + crop, x : x + crop])
                window = np.ascontiguousarray(root[y : y + crop, x : x + crop])
                Image.fromarray(window).save(dest / "masks" / f"{name}-mask.png", optimize=True)
                out_split[part].append(name)
    (dest / "split.json").write_text(json.dumps(out_split, indent=1) + "\n")
    if (segroot / "README.md").is_file():  # provenance and licence note travel with the scans
        shutil.copyfile(segroot / "README.md", dest / "README.md")
    return {part: len(stems) for part, stems in out_split.items()}


def tracked_bytes() -> int:
    """Size of the repository's tracked files (what a device call sends besides the bundle)."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum((REPO / name).stat().st_size for name in listing.decode().split("\0") if (REPO / name).is_file())


def manifest(root: Path) -> dict[str, object]:
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "MANIFEST.json"):
        files[str(path.relative_to(root))] = {
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    return files


def bundle(out: Path, segroot: Path) -> dict[str, object]:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    wheels = build_wheels(out / "wheels")
    counts = write_data(out / "shared" / "datasets" / "segroot", segroot)
    files = manifest(out)
    total = sum(f["bytes"] for f in files.values())
    repo = tracked_bytes()
    by_part = {
        part: sum(f["bytes"] for name, f in files.items() if name.startswith(part))
        for part in ("wheels/", "shared/datasets/segroot/images/", "shared/datasets/segroot/masks/")
    }
    summary = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "target": "CPython 3.12, manylinux x86_64 (the GPU machine's python3)",
        "wheels": [w.name for w in wheels],
        "scans": counts,
        "bytes": {"total": total, **by_part, "repository_tracked_files": repo},
        "mb": {"bundle": round(total / 1e6, 2), "with_repository": round((total + repo) / 1e6, 2)},
        "seconds": round(time.perf_counter() - start, 1),
        "files": files,
    }
    (out / "MANIFEST.json").write_text(json.dumps(summary, indent=1) + "\n")
    if (total + repo) / 1e6 > LIMIT_MB:
        raise BundleError(
            f"{out}: {total / 1e6:.1f} MB + the repository's {repo / 1e6:.1f} MB is over the {LIMIT_MB:.0f} MB "
            "a device call may carry with room to spare; leave something out"
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["all", "wheels", "data"], default="all")
    parser.add_argument("out", nargs="?", type=Path, default=REPO / ".gpu-bundle")
    parser.add_argument("--segroot", type=Path, default=SEGROOT, help="SegRoot folder (images/, masks/, split.json)")
    parser.add_argument("--scans", type=int, default=None, help="data: 1 train + SCANS-1 val scans only")
    parser.add_argument("--crop", type=int, default=None, help="data: cut windows of this side (px)")
    parser.add_argument("--crops", type=int, default=1, help="data: windows per scan with --crop")
    args = parser.parse_args(argv)
    try:
        if args.what == "data":
            counts = write_data(args.out, args.segroot, args.scans, args.crop, args.crops)
            print(json.dumps({"data": str(args.out), **counts}))
        elif args.what == "wheels":
            print("\n".join(w.name for w in build_wheels(args.out)))
        else:
            summary = bundle(args.out, args.segroot)
            print(json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=1))
            print(
                f"{args.out}: {summary['mb']['bundle']} MB ({summary['mb']['with_repository']} MB with the repository)"
            )
    except BundleError as error:
        print(f"gpu-bundle: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
