"""Features: clips to segments shaped (channels, bins, frames), cached."""

from mgc.features.base import Extractor, FeatureSet
from mgc.features.chroma import Chroma
from mgc.features.image import MFCCImage
from mgc.features.kaggle import KaggleTable
from mgc.features.logmel import LogMel
from mgc.features.mfcc import MFCC, MFCCFromJSON, export_json, load_json, mfcc_or_json
from mgc.features.musicnn import MusicnnEmbedding, MusicnnMel

__all__ = [
    "MFCC",
    "Chroma",
    "Extractor",
    "FeatureSet",
    "KaggleTable",
    "LogMel",
    "MFCCFromJSON",
    "MFCCImage",
    "MusicnnEmbedding",
    "MusicnnMel",
    "export_json",
    "load_json",
    "mfcc_or_json",
]
