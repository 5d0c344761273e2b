"""The clip-statistics baseline: mean and standard deviation over time, then one linear layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class StatsLinear(nn.Module):
    """Mean and std over frames of every (channel, bin), concatenated, then one linear layer.

    The literature's summary-statistics baseline (Tzanetakis & Cook 2002 and
    most GTZAN tables since): each segment becomes ``2 * channels * bins``
    numbers, ``[mean of every (channel, bin) | std of every (channel, bin)]``
    in ``(channel, bin)`` order, and a multinomial logistic regression reads
    them. The std is the population one (divided by ``frames``), so a
    single-frame input (a table row, 1x57x1) gives 0, not NaN.

    Parameters
    ----------
    input_shape : (channels, bins, frames)
        One segment.
    num_classes : int
        Number of genres.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        super().__init__()
        channels, bins, _ = input_shape
        self.linear = nn.Linear(2 * channels * bins, num_classes)

    @staticmethod
    def statistics(x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, bins, frames)`` to ``(batch, 2 * channels * bins)``: means, then stds."""
        std, mean = torch.std_mean(x, dim=3, correction=0)
        return torch.cat([mean.flatten(1), std.flatten(1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.statistics(x))
