"""Discover the clips of a GTZAN folder in any of its common layouts.

GTZAN circulates as ``genres/<genre>/<genre>.NNNNN.au`` (the original
tarball), ``genres_original/<genre>/<genre>.NNNNN.wav`` (the Kaggle copy),
``Data/genres_original/...`` (the Kaggle zip unpacked) or simply a folder
holding the ten genre folders. :class:`GTZAN` accepts all of them and returns
one :class:`Clip` per audio file. Labels are the *sorted* genre folder names,
so label order never depends on ``os.walk`` order or on the file system.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from mgc.data.base import Clip, Source
from mgc.errors import MgcError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".au", ".mp3", ".flac", ".ogg")
LAYOUTS = ("genres_original", "Data/genres_original", "genres", ".")


class GTZAN(Source):
    """A GTZAN-layout folder of audio clips, one sub-folder per genre.

    Parameters
    ----------
    root : str or Path, or a list of them
        The data set folder: either the folder holding the genre folders or a
        parent of it in one of the known layouts (see :data:`LAYOUTS`). A list
        of folders is read as one data set (``data.root=[dev,artists]`` trains a
        final model on both); a track id in two of them is an error.
    sample_rate : int
        Rate every clip is resampled to when it is read (``librosa.load``).
    name : str
        Short name used in reports and error messages.
    """

    def __init__(
        self, root: str | os.PathLike | Sequence[str | os.PathLike], sample_rate: int = 22050, name: str = "gtzan"
    ):
        roots = [root] if isinstance(root, str | os.PathLike) else list(root)
        self.roots = [Path(r).expanduser() for r in roots]
        self.root = self.roots[0]
        self.sample_rate = int(sample_rate)
        self.name = name

    def prepare(self) -> None:
        """Nothing to do for real data; the synthetic source writes its files here."""

    def genre_dir(self) -> Path:
        """The folder whose sub-folders are the genres, whichever layout is used (the first root's)."""
        return self._scan[0]

    def fingerprint(self) -> str:
        return str(self.genre_dir())

    @cached_property
    def _scan(self) -> tuple[Path, dict[str, list[Path]]]:
        """Genre folder (the first root's) and audio files per genre of every root, read from disk once."""
        scans = [_scan_root(root) for root in self.roots]
        files: dict[str, list[Path]] = {}
        owner: dict[str, Path] = {}
        for base, found in scans:
            for genre, paths in found.items():
                for path in paths:
                    if path.stem in owner:
                        raise MgcError(
                            f"data.root: track {path.stem} is in both {owner[path.stem]} and {base}; "
                            f"list each folder once, with no clip in two of them"
                        )
                    owner[path.stem] = base
                files.setdefault(genre, []).extend(paths)
        return scans[0][0], files

    @property
    def genres(self) -> list[str]:
        """Genre names in label order (sorted)."""
        return sorted(self._scan[1])

    def clips(self) -> list[Clip]:
        """All audio clips, sorted by genre then file name; stray files are ignored."""
        base, files = self._scan
        if len(files) < 2:
            raise MgcError(
                f"data.root={self.root}: found audio for {len(files)} genre ({', '.join(files)}) in {base}; "
                f"genre classification needs at least two genre folders"
            )
        return [
            Clip(path=path, genre=genre, track_id=path.stem) for genre in sorted(files) for path in sorted(files[genre])
        ]


def _scan_root(root: Path) -> tuple[Path, dict[str, list[Path]]]:
    """The genre folder of ``root``, whichever layout it has, and its audio files per genre."""
    if not root.is_dir():
        raise MgcError(
            f"data.root={root} does not exist or is not a folder: point data.root at a GTZAN folder "
            f"(one sub-folder per genre, e.g. genres/blues/blues.00000.wav)"
        )
    for layout in LAYOUTS:
        candidate = (root / layout).resolve()
        files = _audio_by_genre(candidate)
        if files:
            return candidate, files
    found = sorted(p.name for p in root.iterdir())[:8]
    raise MgcError(
        f"data.root={root} holds no genre folders with audio (found: {found or 'nothing'}); "
        f"expected <genre>/<genre>.NNNNN.wav|.au, optionally under genres/, genres_original/ "
        f"or Data/genres_original/"
    )


def _is_audio(path: Path) -> bool:
    """What counts as an audio file everywhere in mgc: an audio extension, not hidden, a file."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _skip_unreadable(err: OSError) -> None:
    """A folder that cannot be listed (permissions) is skipped, and the log says which."""
    log.warning("skipping %s: %s", err.filename, err.strerror or err)


def _audio_files(folder: Path) -> list[Path]:
    """Audio files directly inside ``folder``; hidden files and non-audio are skipped."""
    try:
        entries = list(folder.iterdir())
    except OSError as err:
        _skip_unreadable(err)
        return []
    return [p for p in entries if _is_audio(p)]


def audio_files_under(folder: Path) -> list[Path]:
    """Every audio file in ``folder`` and its sub-folders, sorted; hidden files and folders are skipped."""
    found: list[Path] = []
    for here, subdirs, files in os.walk(folder, onerror=_skip_unreadable):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found += [path for name in files if _is_audio(path := Path(here) / name)]
    return sorted(found)


def _audio_by_genre(base: Path) -> dict[str, list[Path]]:
    """Audio files of each sub-folder of ``base`` that holds any (hidden folders skipped)."""
    if not base.is_dir():
        return {}
    try:
        subdirs = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return {}
    found = {p.name: _audio_files(p) for p in subdirs}
    return {genre: files for genre, files in found.items() if files}
