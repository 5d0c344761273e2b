"""The journal's 4-conv CNN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgc.models.blocks import ChannelsLast, GlobalPool, conv_blocks


class CNN(ChannelsLast, nn.Sequential):
    """Conv blocks (3x3 conv, batch norm, ReLU, 2x2 average pooling), then an FC head.

    The journal used 256/256/256/512 channels and FC 256 -> 128 -> classes
    with dropout 0.2. Pooling uses ``ceil_mode`` so a 13-bin MFCC survives
    four halvings (13 -> 7 -> 4 -> 2 -> 1); a global average over what is left
    makes the head independent of the input size. ``channels_last`` runs the
    convolutions in NHWC memory layout, which oneDNN executes faster on CPU.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (256, 256, 256, 512),
        fc: Sequence[int] = (256, 128),
        dropout: float = 0.2,
        channels_last: bool = True,
    ):
        layers, width = conv_blocks(int(input_shape[0]), channels, nn.AvgPool2d)
        layers.append(GlobalPool("mean"))
        for h in fc:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self._use_channels_last(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self._layout(x))
