"""A CSV manifest of labelled audio: ``path,label`` and optionally ``split`` and ``group``.

    python train.py data=csv data.manifest=/data/my-music/manifest.csv split=kfold
    python train.py data=csv data.manifest=... split=manifest      # the parts the manifest's split column gives

- ``path``: an audio file; a relative path resolves against the manifest's folder.
  It is also the clip's track id, as written. A listed file that does not exist
  is skipped and listed beside unreadable clips (``skipped.txt`` of the cache).
- ``label``: the genre, any name.
- ``split`` (optional): ``train``, ``val`` or ``test``, for ``split=manifest``.
- ``group`` (optional): e.g. the artist. Track and k-fold splits keep each group's
  tracks in one part, which is how artist-filtered evaluation is done.
"""

from __future__ import annotations

import csv
import os
from functools import cached_property
from pathlib import Path

from mgc.data.base import Clip, Source
from mgc.errors import MgcError

REQUIRED = ("path", "label")
PARTS = ("train", "val", "test")


class ManifestSource(Source):
    """Clips listed in a CSV manifest.

    Parameters
    ----------
    manifest : str or Path
        The CSV file (a header row, then one clip a row).
    sample_rate : int
        Rate every clip is resampled to when it is read.
    name : str
        Short name used in reports and error messages.
    """

    def __init__(self, manifest: str | os.PathLike, sample_rate: int = 22050, name: str = "csv"):
        self.manifest = Path(manifest).expanduser()
        self.root = self.manifest.parent
        self.sample_rate = int(sample_rate)
        self.name = name

    def fingerprint(self) -> str:
        return str(self.manifest.resolve())

    def clips(self) -> list[Clip]:
        return self._clips

    @cached_property
    def _clips(self) -> list[Clip]:
        rows = self._rows()
        clips, seen = [], set()
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            where = f"data.manifest={self.manifest}, line {number}"
            path, label = (row.get(k, "").strip() for k in REQUIRED)
            if not path or not label:
                raise MgcError(f"{where}: empty path or label; every row needs both")
            if path in seen:
                raise MgcError(f"{where}: {path} is listed twice; list each clip once")
            seen.add(path)
            part = (row.get("split") or "").strip() or None
            if part is not None and part not in PARTS:
                raise MgcError(f"{where}: split '{part}' is not one of {', '.join(PARTS)} (or empty)")
            group = (row.get("group") or "").strip() or None
            clips.append(Clip(path=self.root / path, genre=label, track_id=path, group=group, part=part))
        if len({c.genre for c in clips}) < 2:
            raise MgcError(f"data.manifest={self.manifest}: genre classification needs at least two labels")
        return sorted(clips, key=lambda c: (c.genre, c.track_id))

    def _rows(self) -> list[dict[str, str]]:
        try:
            with self.manifest.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                columns = [c.strip() for c in reader.fieldnames or []]
        except FileNotFoundError:
            raise MgcError(f"data.manifest={self.manifest} does not exist: pass a CSV of path,label") from None
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise MgcError(f"data.manifest={self.manifest} cannot be read as CSV ({err})") from None
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise MgcError(
                f"data.manifest={self.manifest} has no '{missing[0]}' column (it has {', '.join(columns) or 'none'}); "
                f"the header must name path and label (optionally split and group)"
            )
        return [{k.strip(): v for k, v in row.items() if k} for row in rows]
