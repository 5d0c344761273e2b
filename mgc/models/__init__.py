"""Backbones. Each is built from ``input_shape`` (channels, bins, frames) and
``num_classes`` and maps ``(batch, channels, bins, frames)`` to logits, so
every model runs on every feature."""

from mgc.models.cnn import CNN
from mgc.models.dense import MLP, Linear
from mgc.models.ensemble import Ensemble
from mgc.models.musicnn import MusicnnClassifier
from mgc.models.recurrent import Recurrent
from mgc.models.resnet import ResNet18
from mgc.models.short_chunk_cnn import ShortChunkCNN
from mgc.models.stats_linear import StatsLinear

__all__ = [
    "CNN",
    "MLP",
    "Ensemble",
    "Linear",
    "MusicnnClassifier",
    "Recurrent",
    "ResNet18",
    "ShortChunkCNN",
    "StatsLinear",
]
