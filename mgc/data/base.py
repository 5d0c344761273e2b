"""The data-source contract: what every source of labelled audio gives the rest of mgc.

A source (the ``data`` config group) finds clips and says what each one is:
a :class:`Clip` with its audio file, its genre (any label name), a track id
unique in the source and, where the source knows them, a group (an artist,
an album: track and k-fold splits keep a group in one part) and a part
(``train``/``val``/``test``, for ``split=manifest``). Features, splits, the
data module and predict depend on this contract only:

- :meth:`Source.prepare` makes the clips exist (the synthetic source writes them);
- :meth:`Source.clips` lists them, sorted, the same list every call;
- :attr:`Source.genres` is the label set in label order (sorted names);
- :meth:`Source.fingerprint` names where the clips come from, for cache keys.

Sources: :class:`~mgc.data.gtzan.GTZAN` (any GTZAN layout),
:class:`~mgc.data.synthetic.SyntheticGTZAN`, :class:`~mgc.data.folder.FolderSource`
(any ``<label>/<audio files>`` tree) and :class:`~mgc.data.manifest.ManifestSource`
(a CSV of ``path,label[,split][,group]``). A new source is a subclass and its yaml.

Precomputed features (Kaggle's table, a ``data_10.json``) are not sources: they are features whose
``reads_audio`` is False, whose ``extract()`` builds the :class:`~mgc.features.base.FeatureSet` a source
and an audio feature would have made together (track ids, labels, genre names) from the file itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clip:
    """One audio file with its genre and a stable id such as ``blues.00042``."""

    path: Path
    genre: str
    track_id: str
    group: str | None = None  # e.g. the artist: grouped splits keep a group's tracks in one part
    part: str | None = None  # train / val / test, where the source prescribes the split


class Source:
    """Base of every data source; subclasses implement :meth:`clips` (and :meth:`prepare` if needed)."""

    name = "source"

    def prepare(self) -> None:
        """Make the clips exist; real data needs nothing."""

    def clips(self) -> list[Clip]:
        """Every clip, sorted by genre then track id."""
        raise NotImplementedError

    @property
    def genres(self) -> list[str]:
        """Genre names in label order (sorted), as the clips name them."""
        return sorted({c.genre for c in self.clips()})

    def fingerprint(self) -> str:
        """Where the clips come from, for feature cache keys (the clips' names, sizes and times are keyed too)."""
        raise NotImplementedError
