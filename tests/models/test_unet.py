import pytest
import torch

from rootseg.models.unet import UNet, normalize_tiles


def _expected_params(base: int, depth: int, in_ch: int = 3, classes: int = 2) -> int:
    """Count by hand: conv 3x3 (w + b) followed by GroupNorm (weight + bias), twice per block."""

    def block(cin: int, cout: int) -> int:
        return (9 * cin * cout + cout + 2 * cout) + (9 * cout * cout + cout + 2 * cout)

    ch = [base * 2**i for i in range(depth + 1)]
    total = block(in_ch, ch[0]) + sum(block(ch[i], ch[i + 1]) for i in range(depth))
    for i in range(depth):
        total += 4 * ch[i + 1] * ch[i] + ch[i] + 2 * ch[i]  # transposed conv 2x2 + GroupNorm
        total += block(2 * ch[i], ch[i])
    return total + ch[0] * classes + classes


def test_smith_unet_572_to_388_and_parameter_count():
    net = UNet()
    assert net.output_size(572) == 388
    assert sum(p.numel() for p in net.parameters()) == _expected_params(64, 4) == 31_045_506
    # only the shape is checked at full size; one forward of the full net costs ~2 s on 2 cores
    with torch.no_grad():
        out = net(torch.rand(1, 3, 572, 572) * 255)
    assert out.shape == (1, 2, 388, 388)


@pytest.mark.parametrize(("depth", "tile_in", "tile_out"), [(3, 276, 188), (4, 380, 196), (2, 100, 60)])
def test_tiny_unets_map_valid_sizes(depth, tile_in, tile_out):
    net = UNet(base_channels=8, depth=depth, groups=8)
    assert net.output_size(tile_in) == tile_out
    assert sum(p.numel() for p in net.parameters()) == _expected_params(8, depth)
    with torch.no_grad():
        assert net(torch.rand(2, 3, tile_in, tile_in) * 255).shape == (2, 2, tile_out, tile_out)


def test_invalid_tile_size_is_explained():
    with pytest.raises(ValueError, match="572 -> 388"):
        UNet().output_size(570)


def test_tiles_are_scaled_to_minus_half_half_each():
    tiles = torch.stack([torch.full((3, 4, 4), 10.0), torch.arange(48.0).view(3, 4, 4)])
    tiles[0, 0, 0, 0] = 200.0
    out = normalize_tiles(tiles)
    for tile in out:
        assert tile.min().item() == pytest.approx(-0.5)
        assert tile.max().item() == pytest.approx(0.5)


def test_he_initialisation():
    net = UNet(base_channels=8, depth=2, groups=8)
    conv = net.inc[0]
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.25)
    assert torch.all(conv.bias == 0)
