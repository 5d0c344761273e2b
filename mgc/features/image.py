"""MFCC images: RGB PNG files a person can open, in an ImageFolder-style tree.

The journal trained ResNet18 on MFCC pictures. :class:`MFCCImage` renders
each MFCC matrix through a colour map (low coefficients at the bottom, as
``librosa.display.specshow`` draws them), optionally resized to ``size``, and
stores it as ``<cache>/<genre>/<track_id>.png`` (or ``<track_id>.sNN.png`` per
segment). Training reads the PNG files back into ``(3, H, W)`` tensors in
[0, 1], so what a person sees is exactly what the model sees.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from mgc.data.base import Clip
from mgc.features.mfcc import MFCC


class MFCCImage(MFCC):
    """MFCC rendered to an RGB image: ``(3, H, W)``.

    Parameters
    ----------
    colormap : str
        A matplotlib colour map name.
    size : [height, width], optional
        Resize the rendered matrix (the journal used 70 x 70); None keeps
        one pixel per coefficient and frame.
    **kwargs
        MFCC, segmenting and cache options. One image per clip by default
        (``segments_per_clip: 1`` with a clip-long segment).
    """

    name = "mfcc-png"
    streamable = False  # its store holds PNG images (as the journal's were), not a .npy array to read by row

    def __init__(self, colormap: str = "magma", size: list[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.colormap = colormap
        self.size = tuple(int(s) for s in size) if size else None

    def params(self) -> dict:
        return {**super().params(), "colormap": self.colormap, "size": self.size}

    def gain_response(self) -> None:
        """None: each image is scaled to its own range, so a level change does not show."""
        return None

    def compute(self, segments: np.ndarray) -> np.ndarray:
        return np.stack([self.render(m[0]) for m in super().compute(segments)]).astype(np.float32) / 255

    def render(self, mfcc: np.ndarray) -> np.ndarray:
        """One MFCC matrix ``(n_mfcc, frames)`` as a uint8 image ``(3, H, W)``."""
        lo, hi = float(mfcc.min()), float(mfcc.max())
        scaled = (mfcc - lo) / (hi - lo) if hi > lo else np.zeros_like(mfcc)
        rgb = matplotlib.colormaps[self.colormap](scaled[::-1])[..., :3]
        img = Image.fromarray(np.round(rgb * 255).astype(np.uint8))
        if self.size:
            img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return np.asarray(img).transpose(2, 0, 1)

    @staticmethod
    def _png_paths(folder: Path, genre: str, track_id: str, n_segments: int) -> list[Path]:
        if n_segments == 1:
            return [folder / genre / f"{track_id}.png"]
        return [folder / genre / f"{track_id}.s{i:02d}.png" for i in range(n_segments)]

    def save_segments(self, folder: Path, kept: list[tuple[Clip, np.ndarray]]) -> None:
        for clip, images in kept:
            for path, img in zip(self._png_paths(folder, clip.genre, clip.track_id, len(images)), images):
                path.parent.mkdir(parents=True, exist_ok=True)  # a folder source's track ids hold sub-folders
                Image.fromarray(np.round(img * 255).astype(np.uint8).transpose(1, 2, 0)).save(path)

    def load_segments(self, folder: Path, index: dict) -> np.ndarray:
        images = []
        for track_id, label, count in zip(index["track_ids"], index["track_labels"], index["segments"]):
            for path in self._png_paths(folder, index["class_names"][label], track_id, count):
                with Image.open(path) as img:
                    images.append(np.asarray(img.convert("RGB")).transpose(2, 0, 1))
        return np.stack(images).astype(np.float32) / 255
