"""LSTM, BiLSTM and GRU: frames are time steps, ``channels * bins`` values each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn


class Recurrent(nn.Module):
    """A stacked recurrent network that classifies from the last time step.

    Parameters
    ----------
    cell : {"lstm", "gru"}
        The recurrent cell.
    bidirectional : bool
        Read forwards and backwards; the head then sees both directions'
        final states (forward at the last frame, backward at the first),
        which doubles its input.
    hidden_size, num_layers, dropout :
        The journal used 2 layers of 256 with dropout 0.2.
    fc : int
        Width of the hidden layer of the head.
    """

    CELLS: ClassVar[dict[str, type[nn.RNNBase]]] = {"lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        cell: str = "gru",
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.2,
        bidirectional: bool = False,
        fc: int = 64,
    ):
        super().__init__()
        channels, bins, _ = input_shape
        self.rnn = self.CELLS[cell](
            channels * bins,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(
            nn.Linear(hidden_size * directions, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        _, state = self.rnn(x.reshape(b, c * f, t).transpose(1, 2))
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        last = h[-directions:].transpose(0, 1).reshape(b, -1)  # last layer, every direction
        return self.head(last)
