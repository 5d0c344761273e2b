"""Decide which segment goes to train, val and test.

Three kinds, one per question a researcher asks:

* :class:`SegmentSplit` reproduces the journal: segments are shuffled and cut
  at random, ignoring which track they came from. Segments of one song end up
  in train *and* test, so its accuracy is optimistic; it exists to reproduce
  the journal's numbers, not to claim accuracy.
* :class:`TrackSplit` splits whole tracks, stratified by genre: no track is in
  two parts. This is the honest split for synthetic or unofficial data.
* :class:`FilteredSplit` is the fault-filtered GTZAN split (Kereliuk, Sturm &
  Larsen 2015; 443/197/290 tracks), the split GTZAN results are compared on.

Every split returns ``{part: segment indices}`` with parts ``train``, ``val``
and, when it has one, ``test``; the same seed gives the same split.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import ClassVar

import numpy as np

from mgc.data.gtzan import Clip
from mgc.errors import MgcError
from mgc.features.base import FeatureSet

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


class Split:
    """Base class: a named assignment of segments to parts."""

    def __init__(self, name: str):
        self.name = name

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def check(self, clips: list[Clip], source_name: str) -> None:
        """Fail before feature extraction when the clip list alone shows the split cannot work."""


class _FractionSplit(Split):
    """Shared validation of ``fractions`` ({part: share}, summing to 1)."""

    def __init__(self, name: str, fractions: dict[str, float], seed: int = 0):
        super().__init__(name)
        self.fractions = {k: float(v) for k, v in fractions.items()}
        self.seed = int(seed)
        unknown = set(self.fractions) - set(PARTS)
        if unknown or not {"train", "val"} <= set(self.fractions):
            raise MgcError(f"split.fractions={self.fractions}: parts must be train, val and optionally test")
        if any(v <= 0 for v in self.fractions.values()) or abs(sum(self.fractions.values()) - 1) > 1e-6:
            raise MgcError(f"split.fractions={self.fractions}: each share must be > 0 and they must sum to 1")

    def _counts(self, n: int) -> dict[str, int]:
        """Items per part for ``n`` items: every part gets one when there are enough; train absorbs rounding."""
        counts = {
            p: max(1, round(f * n)) if n >= len(self.fractions) else round(f * n) for p, f in self.fractions.items()
        }
        counts["train"] = n - sum(c for p, c in counts.items() if p != "train")
        return counts

    def _cut(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Shuffle ``range(n)`` and cut it into parts of :meth:`_counts` sizes."""
        order = rng.permutation(n)
        counts = self._counts(n)
        bounds = np.cumsum([0, *counts.values()])
        return {part: order[a:b] for part, a, b in zip(counts, bounds[:-1], bounds[1:])}


class SegmentSplit(_FractionSplit):
    """Random over segments, as in the journal. Leaks: one track's segments land in several parts."""

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        parts = self._cut(len(features), np.random.default_rng(self.seed))
        empty = [p for p, idx in parts.items() if len(idx) == 0]
        if empty:
            raise MgcError(
                f"split={self.name}: part {empty[0]} would be empty with {len(features)} segments; use more data"
            )
        return {p: np.sort(idx) for p, idx in parts.items()}


class TrackSplit(_FractionSplit):
    """By track, stratified by genre: every genre is cut at the same fractions, no track in two parts."""

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        if not features.has_tracks:
            raise MgcError(
                f"split={self.name} needs track ids, but {features.source or 'these features'} has none "
                f"(a data_10.json stores bare segments); use a segment split such as split=segment_90_10"
            )
        rng = np.random.default_rng(self.seed)
        track_labels = features.track_labels
        chosen: dict[str, list[np.ndarray]] = {p: [] for p in self.fractions}
        for label, genre in enumerate(features.class_names):
            tracks = np.flatnonzero(track_labels == label)
            self._check_genre(genre, len(tracks))
            for part, idx in self._cut(len(tracks), rng).items():
                chosen[part].append(tracks[idx])
        return {p: np.flatnonzero(np.isin(features.tracks, np.concatenate(t))) for p, t in chosen.items()}

    def check(self, clips: list[Clip], source_name: str) -> None:
        genres = [c.genre for c in clips]
        for genre in sorted(set(genres)):
            self._check_genre(genre, genres.count(genre))

    def _check_genre(self, genre: str, n_tracks: int) -> None:
        if min(self._counts(n_tracks).values()) < 1:
            raise MgcError(
                f"split={self.name}: genre '{genre}' has {n_tracks} tracks, too few for a non-empty "
                f"{'/'.join(self.fractions)} part each at {self.fractions}; add clips (data.clips_per_genre) "
                f"or use other fractions"
            )


class FilteredSplit(Split):
    """The fault-filtered GTZAN split, from the lists shipped in ``mgc/splits/gtzan/``."""

    LISTS: ClassVar[dict[str, str]] = {
        "train": "train_filtered.txt",
        "val": "valid_filtered.txt",
        "test": "test_filtered.txt",
    }

    def __init__(self, name: str = "filtered", max_missing: int = 5):
        super().__init__(name)
        self.max_missing = int(max_missing)

    @classmethod
    def track_lists(cls) -> dict[str, list[str]]:
        """Track ids per part, e.g. ``{"train": ["blues.00029", ...], ...}``."""
        folder = resources.files("mgc") / "splits" / "gtzan"
        return {
            part: [
                line.strip().rsplit("/", 1)[-1].rsplit(".", 1)[0]
                for line in (folder / fname).read_text().splitlines()
                if line.strip()
            ]
            for part, fname in cls.LISTS.items()
        }

    def check(self, clips: list[Clip], source_name: str) -> None:
        self._check_present({c.track_id for c in clips}, source_name)

    def _check_present(self, present: set[str], source_name: str) -> None:
        wanted = [t for ids in self.track_lists().values() for t in ids]
        missing = [t for t in wanted if t not in present]
        if len(missing) > self.max_missing or source_name == "synthetic":
            raise MgcError(
                f"split=filtered needs the real GTZAN: {len(missing)} of its {len(wanted)} tracks are not in "
                f"data '{source_name}' ({len(present)} tracks); use data=gtzan data.root=... or a track split"
            )
        if missing:
            log.warning("split=filtered: %d listed tracks are missing (skipped clips?): %s", len(missing), missing)

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        lists = self.track_lists()
        self._check_present(set(features.track_ids), features.source)
        track_index = {t: i for i, t in enumerate(features.track_ids)}
        return {
            part: np.flatnonzero(np.isin(features.tracks, [track_index[t] for t in ids if t in track_index]))
            for part, ids in lists.items()
        }
