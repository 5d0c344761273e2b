"""The Free Music Archive (Defferrard et al. 2017): ``fma_<subset>/<3 digits>/<6-digit track id>.mp3``.

    python train.py data=fma data.root=/data/fma data.subset=small split=fma
    python train.py data=fma data.root=/data/fma data.subset=medium split=kfold   # grouped by artist

``data.root`` holds the audio of one subset (``fma_small/``, ``fma_medium/``, ``fma_large/`` or
``fma_full/``) and the metadata, ``fma_metadata/tracks.csv``. That file has two header rows, the column
groups and the column names, and a third naming the index (``track_id``): what pandas reads with
``read_csv(index_col=0, header=[0, 1])``, read here with the standard ``csv`` module. mgc takes four
columns from it:

- ``(track, genre_top)``: the label, one of the 16 top-level genres. Tracks without one are left out
  and counted (most of fma_large and fma_full have none);
- ``(set, subset)``: the smallest subset holding the track; a subset includes the smaller ones, and
  ``full`` holds every track (untrimmed);
- ``(set, split)``: the official ``training`` / ``validation`` / ``test`` split, for ``split=fma``;
- ``(artist, id)``: the clip's group, so a track or k-fold split keeps an artist's tracks in one part.

The mp3 files are decoded by libsndfile (through soundfile, the first decoder ``librosa.load`` tries;
libsndfile reads MP3 since 1.1). FMA's few unreadable or too-short files are skipped and listed in the
feature cache's ``skipped.txt``, like GTZAN's bad clips, and so is a listed file that does not exist.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mgc.data.base import Clip, Source
from mgc.errors import MgcError

log = logging.getLogger(__name__)

SUBSETS = ("small", "medium", "large", "full")
#: The official split's names, as mgc's parts.
PARTS = {"training": "train", "validation": "val", "test": "test"}
#: What mgc reads of tracks.csv: field -> (column group, column name).
COLUMNS = {
    "genre": ("track", "genre_top"),
    "subset": ("set", "subset"),
    "split": ("set", "split"),
    "artist": ("artist", "id"),
}


@dataclass(frozen=True)
class FMATrack:
    """One row of tracks.csv, as far as mgc reads it (``genre`` empty for a track without a top genre)."""

    track_id: int
    genre: str
    subset: str
    split: str
    artist: str


def read_tracks(path: Path) -> list[FMATrack]:
    """Every row of an FMA ``tracks.csv``; one line naming the file (and line) for what cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [next(reader, []), next(reader, [])]
            next(reader, None)  # the index's own row: track_id,,,...
            where = _column_positions(path, header)
            return [_track(path, reader.line_num, row, where) for row in reader if row]
    except FileNotFoundError:
        raise MgcError(
            f"{path} does not exist: data.root must hold fma_metadata/tracks.csv (from fma_metadata.zip)"
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MgcError(f"{path} cannot be read as FMA's tracks.csv ({err})") from None


def _column_positions(path: Path, header: list[list[str]]) -> dict[str, int]:
    columns = list(zip(*header))
    where = {}
    for field, column in COLUMNS.items():
        if column not in columns:
            raise MgcError(
                f"{path} has no column {column} (group row, name row): it is not FMA's tracks.csv, whose first two "
                f"rows name each column's group and name"
            )
        where[field] = columns.index(column)
    return where


def _track(path: Path, line: int, row: list[str], where: dict[str, int]) -> FMATrack:
    try:
        track_id = int(row[0])
        fields = {field: row[i].strip() for field, i in where.items()}
    except (ValueError, IndexError):
        raise MgcError(f"{path}, line {line}: not a track row (a track id, then every column)") from None
    return FMATrack(track_id, **fields)


class FMA(Source):
    """Clips of one FMA subset, labelled by their top genre, grouped by artist, with the official split.

    Parameters
    ----------
    root : str or Path
        The folder holding ``fma_<subset>/`` and ``fma_metadata/``.
    subset : str
        ``small`` (8 genres balanced, 8,000 clips), ``medium``, ``large`` or ``full``.
    genres : list of str, optional
        Keep only these top genres (names as tracks.csv spells them); None keeps every genre of the subset.
    sample_rate : int
        Rate every clip is resampled to when it is read.
    name : str
        Short name used in reports and error messages.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subset: str = "small",
        genres: list[str] | None = None,
        sample_rate: int = 22050,
        name: str = "fma",
    ):
        if subset not in SUBSETS:
            raise MgcError(f"data.subset={subset}: FMA's subsets are {', '.join(SUBSETS)}")
        self.root = Path(root).expanduser()
        self.subset = subset
        self.wanted = list(genres) if genres else None
        self.sample_rate = int(sample_rate)
        self.name = name

    @property
    def tracks_csv(self) -> Path:
        return self.root / "fma_metadata" / "tracks.csv"

    def fingerprint(self) -> str:
        return f"{self.root.resolve()}|{self.subset}"

    def audio_path(self, track_id: int) -> Path:
        """Where FMA's zip files put a track: ``fma_<subset>/<first 3 digits>/<6 digits>.mp3``."""
        digits = f"{track_id:06d}"
        return self.root / f"fma_{self.subset}" / digits[:3] / f"{digits}.mp3"

    def clips(self) -> list[Clip]:
        return self._clips

    @cached_property
    def _clips(self) -> list[Clip]:
        included = SUBSETS[: SUBSETS.index(self.subset) + 1]
        tracks = [t for t in read_tracks(self.tracks_csv) if self.subset == "full" or t.subset in included]
        labelled = [t for t in tracks if t.genre]
        self._check_genres(labelled)
        kept = [t for t in labelled if self.wanted is None or t.genre in self.wanted]
        log.info(
            "fma %s: %d tracks, %d without a top genre left out, %d of other genres than data.genres",
            self.subset,
            len(tracks),
            len(tracks) - len(labelled),
            len(labelled) - len(kept),
        )
        if len({t.genre for t in kept}) < 2:
            raise MgcError(f"data {self.name}, subset {self.subset}: fewer than two genres among its labelled tracks")
        clips = [
            Clip(self.audio_path(t.track_id), t.genre, f"{t.track_id:06d}", f"artist {t.artist}", PARTS.get(t.split))
            for t in kept
        ]
        return sorted(clips, key=lambda c: (c.genre, c.track_id))

    def _check_genres(self, labelled: list[FMATrack]) -> None:
        """One line for a ``data.genres`` name that no track of the subset has (a typo, or another subset's)."""
        known = sorted({t.genre for t in labelled})
        unknown = [g for g in self.wanted or [] if g not in known]
        if unknown:
            raise MgcError(
                f"data.genres: '{unknown[0]}' is not a top genre of fma_{self.subset} in {self.tracks_csv} "
                f"(its genres: {', '.join(known)})"
            )
