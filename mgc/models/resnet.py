"""ResNet18 (He et al. 2016), written out so mgc does not need torchvision.

The standard architecture: a 7x7 stride-2 stem with max pooling, four stages
of two basic blocks (64, 128, 256, 512 channels, stride 2 from the second
stage), global average pooling and one linear layer. Only the number of input
channels is free, so it reads 3-channel MFCC images as well as 1-channel
MFCC or chroma matrices.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgc.models.blocks import GlobalPool


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet18 with ``input_shape[0]`` input channels and ``num_classes`` outputs."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, widths: Sequence[int] = (64, 128, 256, 512)):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(input_shape[0], widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        width = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(width, w, stride), BasicBlock(w, w)]
            width = w
        self.features = nn.Sequential(*layers)
        self.pool = GlobalPool("mean")
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))
