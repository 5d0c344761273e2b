"""Audio sources: find GTZAN-layout clips on disk (real or synthetic)."""

from mgc.data.gtzan import Clip, GTZAN
from mgc.data.synthetic import SyntheticGTZAN

__all__ = ["Clip", "GTZAN", "SyntheticGTZAN"]
