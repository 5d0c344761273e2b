"""Data sources: the contract (:mod:`mgc.data.base`) and its sources, real, synthetic, folder and manifest."""

from mgc.data.base import Clip, Source
from mgc.data.folder import FolderSource
from mgc.data.gtzan import GTZAN
from mgc.data.manifest import ManifestSource
from mgc.data.synthetic import SyntheticGTZAN

__all__ = ["GTZAN", "Clip", "FolderSource", "ManifestSource", "Source", "SyntheticGTZAN"]
