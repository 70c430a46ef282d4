"""The U-Net of Smith et al. 2020 (RootPainter): valid 3x3 convolutions, Conv -> ReLU -> GroupNorm, 572 -> 388.

Valid convolutions mean each output pixel sees its full context, so tiles stitch without seams; the
price is a 92 px margin that the tiler supplies by mirror padding.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=0),
        nn.ReLU(inplace=True),
        nn.GroupNorm(groups, out_channels),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=0),
        nn.ReLU(inplace=True),
        nn.GroupNorm(groups, out_channels),
    )


def _center_crop(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    dy = (features.shape[-2] - size[0]) // 2
    dx = (features.shape[-1] - size[1]) // 2
    return features[..., dy : dy + size[0], dx : dx + size[1]]


def normalize_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Min-max scale each tile to [-0.5, 0.5] as Smith et al. do, so brightness differences between
    scans and between tiles of one scan do not shift the input distribution."""
    flat = tiles.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    high = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (tiles - low) / (high - low).clamp_min(1e-6) - 0.5


class UNet(nn.Module):
    """Original U-Net (Ronneberger 2015) as modified by Smith et al. 2020: GroupNorm after every ReLU,
    no dropout, He initialisation, two output classes (background, root).

    Input tiles hold raw pixel values (0-255); each tile is min-max normalised inside `forward`, so the
    exported model and every caller see the same preprocessing.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        groups: int = 32,
        normalize_input: bool = True,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.normalize_input = normalize_input
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.inc = _conv_block(in_channels, channels[0], groups)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), _conv_block(channels[i], channels[i + 1], groups)) for i in range(depth)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(channels[i + 1], channels[i], kernel_size=2, stride=2),
                nn.ReLU(inplace=True),
                nn.GroupNorm(groups, channels[i]),
            )
            for i in reversed(range(depth))
        )
        self.up_conv = nn.ModuleList(_conv_block(2 * channels[i], channels[i], groups) for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels[0], num_classes, kernel_size=1)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def output_size(self, input_size: int) -> int:
        """Output side length for a square input tile; raises if the size does not fit the valid convs."""
        size = input_size - 4
        for _ in range(self.depth):
            if size <= 0 or size % 2:
                break
            size = size // 2 - 4
        else:
            for _ in range(self.depth):
                size = size * 2 - 4
            if size > 0:
                return size
        valid = [s for s in range(input_size - 64, input_size + 65) if self._fits(s)]
        raise ValueError(
            f"U-Net input tile {input_size} px does not fit {self.depth} valid-conv levels; nearby sizes that do: "
            f"{valid[:6]} (572 -> 388 is the paper's)"
        )

    def _fits(self, input_size: int) -> bool:
        size = input_size - 4
        for _ in range(self.depth):
            if size <= 0 or size % 2:
                return False
            size = size // 2 - 4
        return size > 0

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) raw tiles -> (B, num_classes, S - 184, S - 184) logits for depth 4."""
        x = normalize_tiles(tiles) if self.normalize_input else tiles
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up, up_conv in zip(self.up, self.up_conv):
            x = up(x)
            skip = _center_crop(skips.pop(), x.shape[-2:])
            x = up_conv(torch.cat([skip, x], dim=1))
        return self.head(x)
