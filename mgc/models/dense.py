"""Fully connected models on the flattened input: the journal's first entries."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn


class Linear(nn.Sequential):
    """One fully connected layer: multinomial logistic regression on the flattened input."""

    def __init__(self, input_shape: Sequence[int], num_classes: int):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


class MLP(nn.Sequential):
    """Flatten, then hidden layers with ReLU and dropout, then logits (no softmax: the loss has it).

    ``hidden=(256, 128)`` gives flatten -> 256 -> 128 -> classes, the
    journal's MLP. The raw input goes straight into the first layer.
    """

    def __init__(
        self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256, 128), dropout: float = 0.3
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
