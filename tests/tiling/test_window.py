"""Sliding-window inference: geometry, blending, flip TTA, out-of-memory fallback, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rootseg.tiling.grid import coverage_count, frame_shape, gaussian_importance_map, tile_grid
from rootseg.tiling.window import FLIPS, flip_tta, sliding_window_probs


def centre_mean(tile_out: int):
    """An 'identity' net: the centre tile_out crop of the input's channel mean / 255."""

    def predict(x: torch.Tensor) -> torch.Tensor:
        margin = (x.shape[-1] - tile_out) // 2
        crop = x[:, :, margin : margin + tile_out, margin : margin + tile_out]
        return crop.mean(dim=1) / 255

    return predict


def constant(value: float, tile_out: int):
    return lambda x: torch.full((x.shape[0], tile_out, tile_out), value, device=x.device)


def ramp(tile_out: int):
    """Not flip-equivariant: a horizontal ramp 0..1 whatever the input."""
    row = torch.linspace(0, 1, tile_out)
    return lambda x: row.expand(x.shape[0], tile_out, tile_out).to(x.device)


def expected_identity(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float().mean(dim=2) / 255


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("h,w", [(1, 1), (5, 7), (12, 12), (13, 25), (100, 80), (397, 1001)])
@pytest.mark.parametrize("tile_in,tile_out", [(44, 12), (32, 32), (572, 388)])
def test_non_overlapping_grid_predicts_every_pixel_exactly_once(h, w, tile_in, tile_out):
    count = coverage_count(h, w, tile_in, tile_out, step=tile_out)
    assert count.shape == (h, w) and (count == 1).all()
    frame = frame_shape(h, w, tile_out, step=tile_out)
    assert frame[0] % tile_out == 0 and frame[1] % tile_out == 0
    assert frame[0] - h < tile_out and frame[1] - w < tile_out
    corners = tile_grid(h, w, tile_out, step=tile_out)
    assert len(corners) == (frame[0] // tile_out) * (frame[1] // tile_out)


@pytest.mark.parametrize("h,w,tile_out,step", [(100, 80, 32, 16), (13, 25, 12, 6), (3000, 2600, 388, 194)])
def test_overlapping_grid_covers_frame_evenly(h, w, tile_out, step):
    corners = tile_grid(h, w, tile_out, step)
    frame_h, frame_w = frame_shape(h, w, tile_out, step)
    ys = sorted({y for y, _ in corners})
    xs = sorted({x for _, x in corners})
    for positions, frame in ((ys, frame_h), (xs, frame_w)):
        assert positions[0] == 0 and positions[-1] + tile_out == frame  # flush with both edges
        assert all(0 < b - a <= step for a, b in zip(positions, positions[1:]))
    assert (coverage_count(h, w, tile_out + 8, tile_out, step) >= 1).all()


def test_run_time_coverage_matches_grid(rng):
    image = rng.integers(0, 256, (50, 37, 3), dtype=np.uint8)
    seen = []

    def ones(x):
        seen.append(x.shape[0])
        return torch.ones(x.shape[0], 12, 12)

    probs = sliding_window_probs(image, ones, 44, 12, step=12, blend="constant", batch_size=3)
    assert (probs == 1).all()
    assert sum(seen) == len(tile_grid(50, 37, 12, 12)) and max(seen) <= 3
    seen.clear()
    probs = sliding_window_probs(image, ones, 44, 12, step=6, blend="gaussian")
    torch.testing.assert_close(probs, torch.ones(50, 37), atol=1e-6, rtol=0)  # every pixel covered, weights > 0
    assert sum(seen) == len(tile_grid(50, 37, 12, 6))


def test_gaussian_importance_map_is_positive_and_peaks_at_one():
    for size in (1, 2, 12, 388):
        weights = gaussian_importance_map(size)
        assert weights.shape == (size, size) and (weights > 0).all()
        assert weights.max() == pytest.approx(1.0)
        assert torch.allclose(weights, weights.flip(0)) and torch.allclose(weights, weights.T)


# ---------------------------------------------------------------------------------------------- blending
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("step", [None, 12, 5])
def test_constant_prediction_blends_to_the_constant(blend, tta, step, rng):
    image = rng.integers(0, 256, (41, 29, 3), dtype=np.uint8)
    probs = sliding_window_probs(image, constant(0.3, 12), 44, 12, step=step, blend=blend, tta=tta)
    assert probs.shape == (41, 29) and probs.dtype == torch.float32
    assert torch.allclose(probs, torch.full_like(probs, 0.3), atol=1e-6)


@pytest.mark.parametrize(
    "shape,tile_in,tile_out",
    [
        ((37, 53), 44, 12),  # odd sizes, valid-conv geometry
        ((37, 53), 32, 32),  # same-size net
        ((100, 80), 160, 128),  # tiny: image smaller than one tile and than the margin
        ((1, 1), 44, 12),
        ((3, 200), 44, 12),
    ],
)
@pytest.mark.parametrize("step", [None, "tile"])
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_identity_net_reproduces_the_image(shape, tile_in, tile_out, step, blend, rng):
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    step = tile_out if step == "tile" else step
    probs = sliding_window_probs(image, centre_mean(tile_out), tile_in, tile_out, step=step, blend=blend)
    assert probs.shape == shape
    torch.testing.assert_close(probs, expected_identity(image), atol=1e-6, rtol=0)


def test_identity_on_a_tensor_image(rng):
    image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()
    probs = sliding_window_probs(tensor, centre_mean(12), 44, 12, batch_size=2)
    torch.testing.assert_close(probs, expected_identity(image), atol=1e-6, rtol=0)


def test_identity_large_image_with_unet_tiles(rng):
    image = rng.integers(0, 256, (3000, 2600, 3), dtype=np.uint8)
    calls = []

    def cheap(x):  # the identity net, and a check that the input really is (B, 3, 572, 572) float 0-255
        calls.append(x.shape[0])
        assert x.shape[1:] == (3, 572, 572) and x.dtype == torch.float32
        return centre_mean(388)(x)

    probs = sliding_window_probs(image, cheap, 572, 388, step=388, blend="constant", batch_size=8)
    assert probs.shape == (3000, 2600)
    assert torch.equal(probs, expected_identity(image))  # each pixel from exactly one tile: bit-exact
    assert sum(calls) == len(tile_grid(3000, 2600, 388, 388)) == 8 * 7


def test_mirror_padding_reflects_the_edge():
    """Context beyond the border is the symmetric mirror image (edge pixel repeated), as in training."""
    image = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    got = []

    def grab(x):
        got.append(x)
        return torch.zeros(x.shape[0], 4, 4)

    sliding_window_probs(image, grab, 20, 4, step=4, blend="constant")
    tiles = torch.cat(got)
    pad = 30  # more than the image's own size: the mirror folds back and forth
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    expected = []
    for y, x in tile_grid(5, 4, 4, 4):
        oy, ox = (8 - 5) // 2, 0  # image centred in the 8 x 4 frame
        top, left = y - oy - 8 + pad, x - ox - 8 + pad  # margin 8
        expected.append(padded[top : top + 20, left : left + 20])
    expected = torch.from_numpy(np.stack(expected)).permute(0, 3, 1, 2).float()
    assert torch.equal(tiles, expected)


# --------------------------------------------------------------------------------------------------- TTA
def test_flip_tta_of_a_non_equivariant_net_is_the_mean_of_unflipped_predictions(rng):
    tiles = torch.from_numpy(rng.uniform(0, 255, (2, 3, 12, 12)).astype(np.float32))
    assert torch.allclose(flip_tta(ramp(12), tiles), torch.full((2, 12, 12), 0.5))

    def skewed(x):  # depends on the input and on position: not flip-equivariant
        return (x.mean(dim=1) / 255) * torch.linspace(0, 1, x.shape[-1])

    by_hand = sum(skewed(tiles.flip(d) if d else tiles).flip(d) if d else skewed(tiles) for d in FLIPS) / 4
    torch.testing.assert_close(flip_tta(skewed, tiles), by_hand)


def test_sliding_window_tta_with_a_ramp_net(rng):
    image = rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)
    plain = sliding_window_probs(image, ramp(12), 44, 12, step=12, blend="constant")
    assert not torch.allclose(plain, torch.full_like(plain, 0.5))
    with_tta = sliding_window_probs(image, ramp(12), 44, 12, step=12, blend="constant", tta=True)
    torch.testing.assert_close(with_tta, torch.full_like(with_tta, 0.5))


def test_sliding_window_tta_equals_mean_of_flipped_images(rng):
    """On a flip-symmetric grid (sides multiples of tile_out), TTA == the mean over flipped whole images."""
    image = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)

    def skewed(x):
        crop = x[:, :, 16:-16, 16:-16]
        return (crop.mean(dim=1) / 255) * torch.linspace(0.2, 1, 12)

    kwargs = dict(tile_in=44, tile_out=12, step=12, blend="constant")
    with_tta = sliding_window_probs(image, skewed, tta=True, **kwargs)
    variants = []
    for dims in FLIPS:
        axes = [d + 2 for d in dims]  # image dims (H, W, C): -2 -> 0 (rows), -1 -> 1 (columns)
        flipped = np.flip(image, axis=axes).copy() if axes else image
        pred = sliding_window_probs(flipped, skewed, **kwargs)
        variants.append(pred.flip(dims) if dims else pred)
    torch.testing.assert_close(with_tta, torch.stack(variants).mean(0))


def test_tta_changes_nothing_for_an_equivariant_net(rng):
    image = rng.integers(0, 256, (33, 27, 3), dtype=np.uint8)
    plain = sliding_window_probs(image, centre_mean(12), 44, 12)
    torch.testing.assert_close(sliding_window_probs(image, centre_mean(12), 44, 12, tta=True), plain)


# --------------------------------------------------------------------------------------- OOM fallback
def test_out_of_memory_halves_the_batch_and_keeps_it(rng):
    image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)  # 4 x 4 = 16 tiles of 12
    sizes = []

    def fussy(x):
        sizes.append(x.shape[0])
        if x.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return centre_mean(12)(x)

    with pytest.warns(RuntimeWarning) as record:
        probs = sliding_window_probs(image, fussy, 44, 12, step=12, batch_size=4)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "batch size 2" in messages[0] and "batch size 1" in messages[1]
    torch.testing.assert_close(probs, expected_identity(image), atol=1e-6, rtol=0)
    assert sizes[:3] == [4, 2, 1] and set(sizes[3:]) == {1}  # the smaller size sticks
    assert sizes.count(1) == 16


class RecordingNet(torch.nn.Module):
    """Fails with out-of-memory on the stand-in accelerator ("meta"), works on the CPU."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.moves = []
        self.devices = []

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]))
        return super().to(*args, **kwargs)

    def forward(self, x):
        self.devices.append(x.device.type)
        if x.device.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return centre_mean(12)(x) * self.scale


def test_out_of_memory_at_batch_one_falls_back_to_cpu_and_restores_the_model(rng):
    image = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    net = RecordingNet()
    # "meta" stands in for a GPU: tiles move there (no data), the net raises out-of-memory on them
    with pytest.warns(RuntimeWarning) as record:
        probs = sliding_window_probs(image, net, 44, 12, step=12, batch_size=2, device="meta")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "batch size 1" in messages[0] and "on the CPU" in messages[1]
    torch.testing.assert_close(probs, expected_identity(image), atol=1e-6, rtol=0)
    assert net.devices[:2] == ["meta", "meta"] and set(net.devices[2:]) == {"cpu"}
    assert net.moves == [torch.device("cpu"), torch.device("cpu")]  # to the CPU, then back where it was


def test_out_of_memory_on_cpu_at_batch_one_is_reraised(rng):
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)

    def always(x):
        raise torch.cuda.OutOfMemoryError("fake")

    with pytest.raises(torch.OutOfMemoryError), pytest.warns(RuntimeWarning):
        sliding_window_probs(image, always, 44, 12, device="cpu")


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "image,match",
    [
        (np.zeros((10, 10), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((3, 10, 10), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 10, 3), np.uint8), "no pixels"),
        (torch.zeros(10, 10, 3), r"\(3, H, W\)"),
        (torch.zeros(1, 3, 10, 10), r"\(3, H, W\)"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_raise_value_error(image, match):
    with pytest.raises(ValueError, match=match):
        sliding_window_probs(image, constant(0.5, 12), 44, 12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(tile_in=12, tile_out=44), "must be even and >= 0"),
        (dict(tile_in=45, tile_out=12), "must be even and >= 0"),
        (dict(tile_in=44, tile_out=0), "tile_out must be a positive integer"),
        (dict(tile_in=44, tile_out=12, step=13), "step must be"),
        (dict(tile_in=44, tile_out=12, step=0), "step must be"),
        (dict(tile_in=44, tile_out=12, blend="median"), "blend must be"),
        (dict(tile_in=44, tile_out=12, batch_size=0), "batch_size"),
    ],
)
def test_bad_geometry_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sliding_window_probs(np.zeros((10, 10, 3), np.uint8), constant(0.5, 12), **kwargs)


@pytest.mark.parametrize(
    "predict,match",
    [
        (lambda x: torch.zeros(x.shape[0], 10, 10), r"shape \(\d+, 12, 12\)"),
        (lambda x: torch.zeros(x.shape[0], 2, 12, 12), r"shape \(\d+, 12, 12\)"),
        (lambda x: torch.zeros(1, 12, 12), "input tiles"),
        (lambda x: torch.full((x.shape[0], 12, 12), 3.0), r"probabilities in \[0, 1\]"),
        (lambda x: torch.full((x.shape[0], 12, 12), float("nan")), "probabilities"),
        (lambda x: np.zeros((x.shape[0], 12, 12)), "torch.Tensor"),
    ],
)
def test_bad_predictions_raise_value_error(predict, match):
    with pytest.raises(ValueError, match=match):
        sliding_window_probs(np.zeros((30, 30, 3), np.uint8), predict, 44, 12, batch_size=3)


def test_single_channel_predictions_are_accepted(rng):
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    probs = sliding_window_probs(image, lambda x: centre_mean(12)(x)[:, None], 44, 12)
    torch.testing.assert_close(probs, expected_identity(image), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------ memory
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize(
    "shape,tile_in,tile_out,step", [((41, 29), 44, 12, None), ((37, 90), 44, 12, 5), ((9, 7), 32, 32, 32)]
)
def test_separable_weight_sum_equals_the_per_pixel_sum(blend, shape, tile_in, tile_out, step, rng):
    """sliding_window_probs divides by row_sum x col_sum instead of a stored (H, W) weight sum: it equals the
    weighted mean computed here pixel by pixel, with the Gaussian (sigma = tile_out / 8) written out again."""
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ramp_net = ramp(tile_out)  # non-constant predictions, so a wrong weight shows
    probs = sliding_window_probs(image, ramp_net, tile_in, tile_out, step=step, blend=blend)
    h, w = shape
    axis = np.arange(tile_out) - (tile_out - 1) / 2
    profile = np.exp(-0.5 * (axis / (tile_out / 8)) ** 2) if blend == "gaussian" else np.ones(tile_out)
    weights = np.outer(profile, profile)
    tile = ramp_net(torch.zeros(1, 3, tile_in, tile_in))[0].numpy()
    frame_h, frame_w = frame_shape(h, w, tile_out, step)
    total, weight_sum = np.zeros((frame_h, frame_w)), np.zeros((frame_h, frame_w))
    for y, x in tile_grid(h, w, tile_out, step):
        total[y : y + tile_out, x : x + tile_out] += tile * weights
        weight_sum[y : y + tile_out, x : x + tile_out] += weights
    top, left = (frame_h - h) // 2, (frame_w - w) // 2
    expected = (total / weight_sum)[top : top + h, left : left + w]
    torch.testing.assert_close(probs, torch.from_numpy(expected).float(), atol=1e-5, rtol=1e-5)


def test_a_memory_mapped_tiff_is_read_tile_by_tile_with_the_same_result(tmp_path, rng):
    import tifffile

    from rootseg.io.images import LazyImage, open_image, read_image

    path = tmp_path / "panel.tif"
    tifffile.imwrite(path, rng.integers(0, 4096, (53, 71, 3)).astype(np.uint16), photometric="rgb")  # 12-bit
    lazy = open_image(path)
    assert isinstance(lazy, LazyImage)
    reads = []
    source_getitem = lazy.__class__.__getitem__

    class Counting(LazyImage):
        def __getitem__(self, key):
            reads.append(key)
            return source_getitem(self, key)

    lazy.__class__ = Counting
    kwargs = {"tile_in": 44, "tile_out": 12, "step": 12, "batch_size": 5}
    got = sliding_window_probs(lazy, centre_mean(12), **kwargs)
    expected = sliding_window_probs(read_image(path), centre_mean(12), **kwargs)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    torch.testing.assert_close(got, expected_identity(read_image(path)), atol=1e-6, rtol=0)
    assert len(reads) == len(tile_grid(53, 71, 12, 12))  # one read per tile, never the whole image
    assert all(np.asarray(k[0]).size == 44 and np.asarray(k[1]).size == 44 for k in reads)
