"""What the convolutional models share: their conv blocks, their global pooling and their memory layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn


def conv_blocks(width: int, channels: Sequence[int], pool: type[nn.Module]) -> tuple[list[nn.Module], int]:
    """One block of 3x3 conv, batch norm, ReLU and 2x2 ``pool`` per entry of ``channels``, and the last width.

    The convolutions have no bias (the batch norm's shift is one). Pooling
    uses ``ceil_mode``: a dimension of n becomes ceil(n / 2), so an odd last
    row is kept and a dimension that has reached 1 stays 1, and any input
    size (a 13-bin MFCC, a 57x1 table row) goes through every block.
    """
    layers: list[nn.Module] = []
    for c in channels:
        layers += [nn.Conv2d(width, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), pool(2, ceil_mode=True)]
        width = c
    return layers, width


class GlobalPool(nn.Module):
    """The max or the mean of each channel over its whole map: (N, C, H, W) -> (N, C).

    Written as reductions, not as ``nn.AdaptiveMaxPool2d(1)`` or
    ``nn.AdaptiveAvgPool2d(1)``: their CUDA backward passes have no
    deterministic kernel, and ``trainer=gpu`` trains deterministically. On CPU
    the numbers are theirs to the bit, gradients and bfloat16 ties included
    (the max passes its gradient to the first largest element, as max pooling
    does), so nothing trained before changes.
    """

    def __init__(self, reduce: Literal["max", "mean"]):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).max(2).values if self.reduce == "max" else x.mean((2, 3))

    def extra_repr(self) -> str:
        return self.reduce


class ChannelsLast:
    """Mixin for a CNN that may run its convolutions in NHWC memory layout.

    oneDNN executes NHWC convolutions faster on CPU (docs/performance.md);
    the numbers are the same up to float rounding. Call :meth:`_use_channels_last`
    at the end of ``__init__`` and :meth:`_layout` on the input in ``forward``.
    """

    channels_last: bool

    def _use_channels_last(self, on: bool) -> None:
        self.channels_last = bool(on)
        if on:
            self.to(memory_format=torch.channels_last)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
