"""The short-chunk CNN of Won et al. (2020), sized for a CPU.

Won, Ferraro, Bogdanov & Serra, "Evaluation of CNN-based automatic music
tagging models" (SMC 2020; github.com/minzwon/sota-music-tagging-models): on
~3-s log-mel chunks a plain VGG-like stack of 3x3 convolutions with 2x2 max
pooling is the strong, simple baseline; a track is predicted from the mean
over its chunks (here: the mean of the segments' log-probabilities, as for
every model).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from mgc.models.blocks import ChannelsLast, GlobalPool, conv_blocks


class ShortChunkCNN(ChannelsLast, nn.Module):
    """Blocks of 3x3 conv, batch norm, ReLU and 2x2 max pooling; global max pooling; a dense head.

    The paper has 7 blocks of ``n, n, 2n, 2n, 2n, 2n, 4n`` channels with
    ``n = 128`` on 128 mel bands x ~188 frames, then linear ``4n -> 4n``, batch
    norm, ReLU, dropout 0.5 and linear to the classes. The default here is the
    same layout at half the width (``n = 64``: 64, 64, 128, 128, 128, 128, 256
    channels, 0.92 M parameters, about a quarter of the paper's convolution
    work), sized for CPU training on 2 cores (docs/performance.md has its
    measured throughput). ``channels=[128,128,256,256,256,256,512]`` is the paper's. The paper's
    batch norm on the input spectrogram is left out: the DataModule
    standardises every (channel, bin) with training statistics.

    Any input size works: pooling uses ``ceil_mode``, so a dimension of n
    becomes ceil(n / 2) (13 bins -> 7 -> 4 -> 2 -> 1) and one that has reached
    1 stays 1; a 13x130 MFCC, a 12x431 chroma or a 57x1 table row go through
    all blocks. Whatever is left after the last block is max-pooled to one
    value per channel.

    Parameters
    ----------
    input_shape : (channels, bins, frames)
        One segment.
    num_classes : int
        Number of genres.
    channels : sequence of int
        Output channels of each block (one block per entry).
    dropout : float
        Dropout before the last linear layer.
    dense_head : bool
        The paper's head (linear, batch norm, ReLU, dropout, linear); False:
        dropout and one linear layer on the pooled channels.
    channels_last : bool
        Run the convolutions in NHWC memory layout, which oneDNN executes
        faster on CPU (as :class:`~mgc.models.CNN` does); the same numbers
        up to float rounding.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (64, 64, 128, 128, 128, 128, 256),
        dropout: float = 0.5,
        dense_head: bool = True,
        channels_last: bool = True,
    ):
        super().__init__()
        blocks, width = conv_blocks(int(input_shape[0]), channels, nn.MaxPool2d)
        self.features = nn.Sequential(*blocks, GlobalPool("max"))
        dense = [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()] if dense_head else []
        self.head = nn.Sequential(*dense, nn.Dropout(dropout), nn.Linear(width, num_classes))
        self._use_channels_last(channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._layout(x)
        if self.training and len(x) == 1:
            # A lone segment (a last training batch of one) has no batch statistics where a
            # map is 1x1 or in the head: batch norm then uses its running statistics.
            with _batch_norm_frozen(self):
                return self.head(self.features(x))
        return self.head(self.features(x))


@contextmanager
def _batch_norm_frozen(model: nn.Module) -> Iterator[None]:
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m in norms:
            m.train()
