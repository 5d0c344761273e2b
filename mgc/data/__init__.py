"""Data sources: the contract (:mod:`mgc.data.base`) and its sources: GTZAN, FMA, folder, manifest, synthetic."""

from mgc.data.base import Clip, Source
from mgc.data.fma import FMA
from mgc.data.folder import FolderSource
from mgc.data.gtzan import GTZAN
from mgc.data.manifest import ManifestSource
from mgc.data.synthetic import SyntheticGTZAN
from mgc.data.synthetic_fma import SyntheticFMA

__all__ = ["FMA", "GTZAN", "Clip", "FolderSource", "ManifestSource", "Source", "SyntheticFMA", "SyntheticGTZAN"]
