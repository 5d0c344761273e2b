"""Features: clips to segments shaped (channels, bins, frames), cached."""

from mgc.features.base import Extractor, FeatureSet
from mgc.features.chroma import Chroma
from mgc.features.image import MFCCImage
from mgc.features.mfcc import MFCC, export_json, load_json

__all__ = ["Chroma", "Extractor", "FeatureSet", "MFCC", "MFCCImage", "export_json", "load_json"]
