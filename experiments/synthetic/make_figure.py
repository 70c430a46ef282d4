"""Synthetic vs real CI-600 scan, each above its mask, to judge by eye whether the generator is plausible.

The real image is read from the shared SegRoot folder and appears only inside the figure (it must not be
committed on its own). Usage: python experiments/synthetic/make_figure.py [--seed S] [--size N] [--out PNG]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import uniform_filter

from rootseg.synthetic.generator import generate_sample

HERE = Path(__file__).resolve().parent
SEGROOT = HERE.parents[1].parent / "shared" / "datasets" / "segroot"
REAL = "Untitled_T050_L004_15.05.17_140042_006_Untitled"  # the most densely rooted SegRoot image


def real_crop(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The size x size window of the real scan holding most root, so both columns show roots."""
    image = np.asarray(Image.open(SEGROOT / "images" / f"{name}.jpg").convert("RGB"))
    mask = np.asarray(Image.open(SEGROOT / "masks" / f"{name}-mask.jpg").convert("L")) > 127
    h, w = mask.shape
    half = size // 2
    density = uniform_filter(mask.astype(np.float32), size)[half : h - half, half : w - half]
    y, x = np.unravel_index(np.argmax(density), density.shape)
    return image[y : y + size, x : x + size], mask[y : y + size, x : x + size].astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=1024, help="side of the synthetic image and real crop")
    parser.add_argument("--panel", type=int, default=600, help="side of each panel in the figure")
    parser.add_argument("--out", type=Path, default=HERE / "synthetic_vs_real.png")
    parser.add_argument("--real", default=REAL, help="SegRoot image stem")
    args = parser.parse_args()

    synth = generate_sample(args.seed, (args.size, args.size))
    real_image, real_mask = real_crop(args.real, args.size)
    panels = [
        (synth.image, f"synthetic, seed {args.seed}, {args.size}x{args.size}"),
        (real_image, f"real CI-600 (SegRoot), {args.size}x{args.size} crop"),
        (synth.mask * 255, f"synthetic mask, {100 * synth.mask.mean():.1f} % root"),
        (real_mask * 255, f"real hand-drawn mask, {100 * real_mask.mean():.1f} % root"),
    ]
    p, label, gap = args.panel, 26, 6
    figure = Image.new("RGB", (2 * p + 3 * gap, 2 * (p + label) + 3 * gap), "white")
    draw = ImageDraw.Draw(figure)
    font = ImageFont.load_default(size=18)
    for i, (array, title) in enumerate(panels):
        x, y = gap + (i % 2) * (p + gap), gap + (i // 2) * (p + label + gap)
        panel = Image.fromarray(array).convert("RGB").resize((p, p), Image.Resampling.LANCZOS)
        figure.paste(panel, (x, y + label))
        draw.text((x + 2, y + 3), title, fill="black", font=font)
    # A 256-colour palette keeps the figure under 1 MB with no visible loss at this scale.
    figure.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
