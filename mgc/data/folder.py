"""Any tree of ``<label>/<audio files>``: your own labelled audio, with no renaming.

    python train.py data=folder data.root=/data/my-music split=kfold

Each sub-folder of ``root`` is a genre (any name, any number of them, at
least two) and every audio file below it (``.wav``, ``.au``, ``.flac``,
``.mp3``, ``.ogg``, in sub-folders too) is one of its clips. A clip's track
id is its path below ``root`` (``rock/live/track01.flac``), unique by
construction, so any file names work. Hidden files and folders are skipped.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from mgc.data.base import Clip, Source
from mgc.data.gtzan import audio_files_under
from mgc.errors import MgcError


class FolderSource(Source):
    """Clips of a ``<label>/<audio files>`` tree.

    Parameters
    ----------
    root : str or Path
        The folder whose sub-folders are the labels.
    sample_rate : int
        Rate every clip is resampled to when it is read.
    name : str
        Short name used in reports and error messages.
    """

    def __init__(self, root: str | os.PathLike, sample_rate: int = 22050, name: str = "folder"):
        self.root = Path(root).expanduser()
        self.sample_rate = int(sample_rate)
        self.name = name

    def fingerprint(self) -> str:
        return str(self.root.resolve())

    def clips(self) -> list[Clip]:
        return self._clips

    @cached_property
    def _clips(self) -> list[Clip]:
        if not self.root.is_dir():
            raise MgcError(
                f"data.root={self.root} does not exist or is not a folder: point it at a folder of "
                f"<label>/<audio files>"
            )
        labels = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        found = {label.name: audio_files_under(label) for label in labels}
        found = {label: files for label, files in found.items() if files}
        if len(found) < 2:
            raise MgcError(
                f"data.root={self.root}: {len(found)} sub-folder(s) hold audio ({', '.join(found) or 'none'}); "
                f"genre classification needs at least two <label>/ folders of audio files"
            )
        return [
            Clip(path=path, genre=label, track_id=path.relative_to(self.root).as_posix())
            for label in sorted(found)
            for path in found[label]
        ]
