"""Audio sources: find GTZAN-layout clips on disk (real or synthetic)."""

from mgc.data.gtzan import GTZAN, Clip
from mgc.data.synthetic import SyntheticGTZAN

__all__ = ["GTZAN", "Clip", "SyntheticGTZAN"]
