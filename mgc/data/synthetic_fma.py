"""A synthetic FMA: the synthetic set's music written in the Free Music Archive's layout, so that
``data=fma`` runs on every machine (``data=synthetic_fma``).

It writes ``fma_metadata/tracks.csv`` in FMA's format (two header rows of column groups and names, the
index's own row, quoted fields with commas and line breaks as the real file has them) and the audio of
the chosen subset as ``fma_<subset>/<3 digits>/<6 digits>.mp3``, then *is* an :class:`~mgc.data.fma.FMA`
source: the code that reads real FMA is the code that runs. Eight of the synthetic styles stand for
eight of FMA's top genres. Each genre has ``artists_per_genre`` artists; FMA's official split keeps an
artist in one part (training, training, validation, test, in turn), and each artist's last track
belongs to the ``medium`` subset only. One track per genre has no top genre, as many real ones have not:
``data=fma`` leaves it out and counts it.

``audio_format=mp3`` (the default) needs libsndfile 1.1 or newer, which soundfile's wheels bundle;
``audio_format=wav`` writes the same layout with ``.wav`` files for a libsndfile without an MP3 encoder.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from mgc.data.fma import FMA, SUBSETS
from mgc.data.synthetic import FORMAT_VERSION, generate_once, render_clip, write_audio
from mgc.data.synthetic_styles import STYLES
from mgc.errors import MgcError

#: FMA top genre -> the synthetic style that plays it.
GENRE_STYLES = {
    "Blues": "blues",
    "Classical": "classical",
    "Electronic": "disco",
    "Folk": "country",
    "Hip-Hop": "hiphop",
    "Jazz": "jazz",
    "Pop": "pop",
    "Rock": "rock",
}
SPLITS = ("training", "training", "validation", "test")


class SyntheticFMA(FMA):
    """Generate an FMA-layout data set on first use, then read it as FMA.

    Parameters
    ----------
    root : str or Path
        Where ``fma_metadata/`` and ``fma_<subset>/`` are written.
    subset : str
        The subset whose audio is written and read (``small`` or ``medium``; ``medium`` adds each artist's last
        track).
    artists_per_genre, tracks_per_artist : int
        The catalogue's size: every genre has as many artists, every artist as many tracks.
    duration : float
        Seconds per clip (FMA's clips: 30).
    audio_format : str
        ``mp3`` as FMA ships, or ``wav`` where libsndfile has no MP3 encoder.
    seed : int
        Seeds every clip; same seed, same bytes.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        subset: str = "small",
        artists_per_genre: int = 4,
        tracks_per_artist: int = 3,
        duration: float = 12.0,
        sample_rate: int = 22050,
        audio_format: str = "mp3",
        seed: int = 0,
        genres: list[str] | None = None,
        num_workers: int = -1,
        name: str = "synthetic_fma",
    ):
        if subset not in SUBSETS[:2]:
            raise MgcError(f"data.subset={subset}: the synthetic FMA writes the small or the medium subset")
        if audio_format not in ("mp3", "wav"):
            raise MgcError(f"data.audio_format={audio_format}: mp3 (as FMA ships) or wav")
        super().__init__(root, subset=subset, genres=genres, sample_rate=sample_rate, name=name)
        self.artists_per_genre, self.tracks_per_artist = int(artists_per_genre), int(tracks_per_artist)
        self.duration, self.audio_format, self.seed = float(duration), audio_format, int(seed)
        self.num_workers = num_workers

    @property
    def params(self) -> dict:
        """Everything that changes the written bytes."""
        keys = ("subset", "artists_per_genre", "tracks_per_artist", "duration", "sample_rate", "audio_format", "seed")
        return {**{k: getattr(self, k) for k in keys}, "version": FORMAT_VERSION}

    def audio_path(self, track_id: int) -> Path:
        return super().audio_path(track_id).with_suffix(f".{self.audio_format}")

    def catalogue(self) -> list[dict[str, str]]:
        """Every track's row: id, genre (empty for the one untagged track per genre), subset, split, artist."""
        rows, track_id = [], 2  # FMA's ids start at 2
        for g, genre in enumerate(sorted(GENRE_STYLES)):
            for a in range(self.artists_per_genre):
                artist = str(100 * g + a + 1)
                for t in range(self.tracks_per_artist + (a == 0)):  # artist 0 also has one untagged track
                    subset = "medium" if t == self.tracks_per_artist - 1 else "small"
                    tagged = t < self.tracks_per_artist
                    rows.append(
                        {"id": str(track_id), "genre": genre if tagged else "", "subset": subset if tagged else "small",
                         "split": SPLITS[a % len(SPLITS)], "artist": artist, "style": GENRE_STYLES[genre]}
                    )  # fmt: skip
                    track_id += 3  # FMA's ids have gaps
        return rows

    def prepare(self) -> None:
        """Write tracks.csv and the subset's audio unless a complete set with the same parameters exists."""
        included = SUBSETS[: SUBSETS.index(self.subset) + 1]
        jobs = [(int(r["id"]), r["style"]) for r in self.catalogue() if r["subset"] in included]
        paths = [self.audio_path(i) for i, _ in jobs] + [self.tracks_csv]
        generate_once(self.root, self.params, paths, jobs, self._write_clip, self.num_workers, self._write_tracks_csv)
        self.__dict__.pop("_clips", None)

    def _write_clip(self, track_id: int, style: str) -> None:
        rng = np.random.default_rng([self.seed, sorted(STYLES).index(style), track_id])
        write_audio(
            self.audio_path(track_id), render_clip(style, rng, self.duration, self.sample_rate), self.sample_rate
        )

    def _write_tracks_csv(self) -> None:
        """tracks.csv in FMA's shape, with columns mgc does not read around the four it does."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = [("album", "title"), ("artist", "id"), ("artist", "bio"), ("set", "split"), ("set", "subset")]
        columns += [("track", "genre_top"), ("track", "title")]
        writer.writerow(["", *(c[0] for c in columns)])
        writer.writerow(["", *(c[1] for c in columns)])
        writer.writerow(["track_id", *([""] * len(columns))])
        for r in self.catalogue():
            bio = f"Artist {r['artist']}, from nowhere.\nPlays {r['style']}, mostly."  # a comma and a line break
            writer.writerow([r["id"], "Album", r["artist"], bio, r["split"], r["subset"], r["genre"], "Song"])
        self.tracks_csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tracks_csv.with_name(".tracks.csv.tmp")
        tmp.write_text(out.getvalue(), encoding="utf-8")
        os.replace(tmp, self.tracks_csv)
