"""Decide which segment goes to train, val and test.

Four kinds, one per question a researcher asks:

* :class:`SegmentSplit` reproduces the journal: segments are shuffled and cut
  at random, ignoring which track they came from. Segments of one song end up
  in train *and* test, so its accuracy is optimistic; it exists to reproduce
  the journal's numbers, not to claim accuracy.
* :class:`TrackSplit` splits whole tracks, stratified by genre: no track is in
  two parts. This is the honest split for synthetic or unofficial data.
* :class:`FilteredSplit` is the fault-filtered GTZAN split (Kereliuk, Sturm &
  Larsen 2015; 443/197/290 tracks), the split GTZAN results are compared on.
* :class:`KFoldSplit` is one fold of k-fold cross-validation by track,
  stratified by genre: across its ``folds`` runs every track is tested once.

Every split returns ``{part: segment indices}`` with a ``train`` part and,
when it has them, ``val`` and ``test``; the same seed gives the same split.
A split of ``train`` alone (``split=all_tracks``) trains a final model on every
track, with the configuration's accuracy measured beforehand by ``make cv``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from importlib import resources
from typing import ClassVar

import numpy as np

from mgc.data.base import Clip
from mgc.errors import MgcError
from mgc.features.base import FeatureSet

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


class Split:
    """Base class: a named assignment of segments to parts."""

    #: True where one track's segments can land in several parts (the report flags such runs as optimistic).
    leaks_tracks: bool = False

    def __init__(self, name: str):
        self.name = name

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def check(self, clips: list[Clip], source_name: str) -> None:
        """Fail before feature extraction when the clip list alone shows the split cannot work."""


def _shares(fractions: dict[str, float], n: int) -> dict[str, int]:
    """Items per part for ``n`` items: every part gets one when there are enough; train absorbs rounding."""
    counts = {p: max(1, round(f * n)) if n >= len(fractions) else round(f * n) for p, f in fractions.items()}
    counts["train"] = n - sum(c for p, c in counts.items() if p != "train")
    return counts


def deal(n: int, folds: int, dealt: int, rng: np.random.Generator) -> np.ndarray:
    """The fold (0 .. folds-1) of each of one genre's ``n`` tracks: shuffled with ``rng``, then dealt in
    turn, starting where the ``dealt`` tracks of the genres before left off (so the folds stay level)."""
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[rng.permutation(n)] = (dealt + np.arange(n)) % folds
    return fold_of


class _ByTrack(Split):
    """Shared by the splits that deal whole tracks to parts, genre by genre (stratified, no leakage).

    Subclasses say with :meth:`_check_genre` whether a genre of ``n`` tracks
    is enough; :meth:`check` applies it to the clip list before extraction,
    :meth:`_genre_units` to the extracted features.
    """

    def check(self, clips: list[Clip], source_name: str) -> None:
        genres = [c.genre for c in clips]
        for genre in sorted(set(genres)):
            self._check_genre(genre, genres.count(genre))

    def _check_genre(self, genre: str, n_tracks: int) -> None:
        raise NotImplementedError

    def _genre_units(self, features: FeatureSet) -> Iterator[tuple[str, list[np.ndarray]]]:
        """``(genre, its units)`` for every genre, each genre checked: a unit is the track indices dealt together.

        Without groups a unit is one track. With groups (``FeatureSet.track_groups``,
        e.g. artists) a unit is all of a group's tracks, filed under the genre most
        of them have, so a group never spans two parts; the counts the checks see
        are then groups.
        """
        if not features.has_tracks:
            raise MgcError(
                f"split={self.name} needs track ids, but {features.source or 'these features'} has none "
                f"(a data_10.json stores bare segments); use a segment split such as split=segment_90_10"
            )
        track_labels = features.track_labels
        units = _group_units(features.track_groups, track_labels) if features.track_groups else None
        for label, genre in enumerate(features.class_names):
            if units is None:
                genre_units = [np.array([t]) for t in np.flatnonzero(track_labels == label)]
            else:
                genre_units = [u for g, u in units if g == label]
            self._check_genre(genre, len(genre_units))
            yield genre, genre_units

    @staticmethod
    def _segments(features: FeatureSet, chosen: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        """Segment indices per part from the track indices chosen for it; a part given no track is left out."""
        parts = {p: np.flatnonzero(np.isin(features.tracks, np.concatenate(t))) for p, t in chosen.items() if t}
        return {p: idx for p, idx in parts.items() if len(idx)}


def _group_units(groups: list[str | None], track_labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(genre label, track indices)`` of each group in order of first appearance; a track without a group is
    its own group. A group's genre is the one most of its tracks have (the lowest label on a tie)."""
    members: dict[str, list[int]] = {}
    for track, group in enumerate(groups):
        members.setdefault(group if group is not None else f"\0track{track}", []).append(track)
    out = []
    for tracks in members.values():
        indices = np.asarray(tracks)
        out.append((int(np.bincount(track_labels[indices]).argmax()), indices))
    return out


def _join(units: list[np.ndarray], chosen: np.ndarray | list[int]) -> np.ndarray:
    """The track indices of the chosen units, in the order chosen."""
    picked = [units[i] for i in chosen]
    return np.concatenate(picked) if picked else np.array([], dtype=np.int64)


class _FractionSplit(Split):
    """Shared validation of ``fractions`` ({part: share}, summing to 1)."""

    def __init__(self, name: str, fractions: dict[str, float], seed: int = 0):
        super().__init__(name)
        self.fractions = {k: float(v) for k, v in fractions.items()}
        self.seed = int(seed)
        unknown = set(self.fractions) - set(PARTS)
        if unknown or "train" not in self.fractions:
            raise MgcError(f"split.fractions={self.fractions}: parts must be train and optionally val and test")
        if any(v <= 0 for v in self.fractions.values()) or abs(sum(self.fractions.values()) - 1) > 1e-6:
            raise MgcError(f"split.fractions={self.fractions}: each share must be > 0 and they must sum to 1")

    def _counts(self, n: int) -> dict[str, int]:
        return _shares(self.fractions, n)

    def _cut(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Shuffle ``range(n)`` and cut it into parts of :meth:`_counts` sizes."""
        order = rng.permutation(n)
        counts = self._counts(n)
        bounds = np.cumsum([0, *counts.values()])
        return {part: order[a:b] for part, a, b in zip(counts, bounds[:-1], bounds[1:])}


class SegmentSplit(_FractionSplit):
    """Random over segments, as in the journal. Leaks: one track's segments land in several parts."""

    leaks_tracks = True

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        parts = self._cut(len(features), np.random.default_rng(self.seed))
        empty = [p for p, idx in parts.items() if len(idx) == 0]
        if empty:
            raise MgcError(
                f"split={self.name}: part {empty[0]} would be empty with {len(features)} segments; use more data"
            )
        return {p: np.sort(idx) for p, idx in parts.items()}


class TrackSplit(_FractionSplit, _ByTrack):
    """By track, stratified by genre: every genre is cut at the same fractions, no track in two parts."""

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        chosen: dict[str, list[np.ndarray]] = {p: [] for p in self.fractions}
        for _, units in self._genre_units(features):
            for part, idx in self._cut(len(units), rng).items():
                chosen[part].append(_join(units, idx))
        return self._segments(features, chosen)

    def _check_genre(self, genre: str, n_tracks: int) -> None:
        if min(self._counts(n_tracks).values()) < 1:
            raise MgcError(
                f"split={self.name}: genre '{genre}' has {n_tracks} tracks, too few for a non-empty "
                f"{'/'.join(self.fractions)} part each at {self.fractions}; add clips (data.clips_per_genre) "
                f"or use other fractions"
            )


class KFoldSplit(_ByTrack):
    """One fold of k-fold cross-validation by track, stratified by genre.

    The tracks of each genre are shuffled with ``seed`` and dealt to the
    ``folds`` folds in turn (the count carries over from genre to genre, so
    the folds also hold the same number of tracks overall, give or take one).
    That assignment depends on the seed only, not on ``fold``: the folds
    partition the tracks, and the runs ``fold=0..folds-1`` test every track
    exactly once. Run ``fold`` tests on fold ``fold``; of the other folds'
    tracks of each genre it keeps ``val_tracks_per_genre`` (when set) or a
    ``val_fraction`` share for validation (checkpoint selection), chosen with
    the seed, and trains on the rest.

    Its name, ``kfold<folds>.fold<fold>`` (e.g. ``kfold5.fold3``), is what
    ``metrics.json`` records as ``split``; the report groups the folds of one
    configuration by the runs' overrides.
    """

    def __init__(
        self,
        folds: int = 5,
        fold: int = 0,
        seed: int = 0,
        val_fraction: float = 0.1,
        val_tracks_per_genre: int | None = None,
    ):
        self.folds, self.fold, self.seed = int(folds), int(fold), int(seed)
        super().__init__(f"kfold{self.folds}.fold{self.fold}")
        if self.folds < 2:
            raise MgcError(
                f"split.folds={self.folds}: cross-validation needs at least 2 folds; use split.folds=5 "
                f"(or a single track split such as split=track_80_10_10)"
            )
        if not 0 <= self.fold < self.folds:
            raise MgcError(
                f"split.fold={self.fold} is out of range for split.folds={self.folds}; use 0 to {self.folds - 1} "
                f"(make cv runs them all)"
            )
        self.val_tracks_per_genre = None if val_tracks_per_genre is None else int(val_tracks_per_genre)
        self.val_fraction = float(val_fraction)
        if self.val_tracks_per_genre is not None and self.val_tracks_per_genre < 0:
            raise MgcError(
                f"split.val_tracks_per_genre={self.val_tracks_per_genre}: must be at least 0 "
                f"(or null to keep split.val_fraction of the training tracks)"
            )
        if self.val_tracks_per_genre is None and not 0 <= self.val_fraction < 1:
            raise MgcError(
                f"split.val_fraction={self.val_fraction}: must be >= 0 and < 1 "
                f"(the share of each genre's training tracks kept for validation; 0: none)"
            )

    def _val_counts(self, n_train: int) -> dict[str, int]:
        """Training and validation tracks of one genre from its ``n_train`` tracks outside the test fold."""
        if self.val_tracks_per_genre is not None:
            return {"train": n_train - self.val_tracks_per_genre, "val": self.val_tracks_per_genre}
        if self.val_fraction == 0:  # no validation: the last epoch is the model
            return {"train": n_train, "val": 0}
        return _shares({"train": 1 - self.val_fraction, "val": self.val_fraction}, n_train)

    def _check_genre(self, genre: str, n_tracks: int) -> None:
        if n_tracks < self.folds:
            raise MgcError(
                f"split={self.name}: genre '{genre}' has {n_tracks} tracks, fewer than split.folds={self.folds} "
                f"(every fold tests at least one track of each genre); use split.folds={max(n_tracks, 2)} "
                f"or fewer, or add clips (data.clips_per_genre)"
            )
        fewest = n_tracks - math.ceil(n_tracks / self.folds)  # training tracks of the fold that tests the most
        counts = self._val_counts(fewest)
        wants_val = self.val_fraction > 0 if self.val_tracks_per_genre is None else self.val_tracks_per_genre > 0
        if counts["train"] < 1 or (wants_val and counts["val"] < 1):
            held = (
                f"split.val_tracks_per_genre={self.val_tracks_per_genre}"
                if self.val_tracks_per_genre is not None
                else f"split.val_fraction={self.val_fraction}"
            )
            raise MgcError(
                f"split={self.name}: genre '{genre}' has {n_tracks} tracks, so a fold trains on as few as "
                f"{fewest}: too few for {held} and at least one training track; hold out fewer validation "
                f"tracks, use fewer folds, or add clips (data.clips_per_genre)"
            )

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        shuffle = np.random.default_rng(self.seed)
        chosen: dict[str, list[np.ndarray]] = {p: [] for p in PARTS}
        dealt = 0  # tracks dealt so far: the next genre starts at the next fold
        for _, units in self._genre_units(features):
            n = len(units)
            fold_of = deal(n, self.folds, dealt, shuffle)
            dealt += n
            # validation candidates in an order drawn for every fold alike, so that the draws of the
            # next genre (and its fold assignment) never depend on which fold this run tests
            candidates = [i for i in shuffle.permutation(n) if fold_of[i] != self.fold]
            n_val = self._val_counts(len(candidates))["val"]
            chosen["test"].append(_join(units, np.flatnonzero(fold_of == self.fold)))
            chosen["val"].append(_join(units, candidates[:n_val]))
            chosen["train"].append(_join(units, candidates[n_val:]))
        return self._segments(features, chosen)


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


class ManifestSplit(Split):
    """The parts a source prescribes for each track: a ``data=csv`` manifest's ``split`` column (``split=manifest``),
    FMA's official split (``split=fma``)."""

    def __init__(self, name: str = "manifest"):
        super().__init__(name)

    def check(self, clips: list[Clip], source_name: str) -> None:
        unassigned = [c.track_id for c in clips if c.part is None]
        if unassigned:
            raise MgcError(
                f"split={self.name}: {len(unassigned)} of {len(clips)} clips of data '{source_name}' have no split "
                f"(first: {unassigned[0]}); give every row of the manifest's split column train, val or test, "
                f"or choose another split"
            )
        if not any(c.part == "train" for c in clips):
            raise MgcError(f"split={self.name}: no clip of data '{source_name}' has split train; mark some train")

    def assign(self, features: FeatureSet) -> dict[str, np.ndarray]:
        if features.track_parts is None:
            raise MgcError(
                f"split={self.name} takes its parts from the source (a manifest's split column, FMA's official "
                f"split), and data '{features.source}' has none; use data=csv with a split column, data=fma, "
                f"or another split"
            )
        parts = np.asarray([p or "" for p in features.track_parts])
        out = {p: np.flatnonzero(np.isin(features.tracks, np.flatnonzero(parts == p))) for p in PARTS}
        return {p: idx for p, idx in out.items() if len(idx)}
