"""A synthetic GTZAN: ten genres of generated music, written in the GTZAN layout.

Real GTZAN cannot be downloaded on a machine without internet, yet every
command of mgc must run on a fresh machine. :class:`SyntheticGTZAN` writes
``<root>/genres_original/<genre>/<genre>.NNNNN.wav`` (16-bit mono WAV) and
then *is* a :class:`~mgc.data.gtzan.GTZAN` source, so the code path that reads
real GTZAN is the one that runs.

The clips are small arrangements, not noise with labels: a drum kit playing a
16-step pattern (kick, snare, hi-hat) with swing, a bass line, a chord
instrument and a lead melody over a chord progression in a key and scale,
shaped by an oscillator timbre, distortion, a low-pass "brightness", loudness
and a noise floor. Each genre is a :class:`Style`; each clip draws its own
tempo, key, mix, timbre and pattern mutations from it, and borrows traits from a
neighbouring genre now and then (rock/metal, disco/pop, blues/jazz,
country/rock, hiphop/reggae, classical/jazz), so genres overlap the way real
ones do. Sections of a clip drop the drums or the lead (breakdowns, intros),
which makes single 3-s segments harder than whole tracks.

Everything is vectorised numpy and deterministic from ``seed``: one clip is
``default_rng([seed, genre_index, clip_index])`` and nothing else.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from filelock import FileLock
from joblib import Parallel, delayed
from scipy import signal

from mgc.data.gtzan import GTZAN

log = logging.getLogger(__name__)

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
PHRYGIAN = (0, 1, 3, 5, 7, 8, 10)
STEPS_PER_BAR = 16
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Style:
    """How one genre plays; a clip perturbs every field.

    Patterns are 16 characters, one per sixteenth note of a 4/4 bar: ``x`` a
    hit, ``o`` a soft hit, ``.`` a rest. ``progression`` lists the scale
    degrees (0-based) of the chord root of each bar.
    """

    tempo: tuple[float, float]
    kick: str
    snare: str
    hat: str
    bass: str
    chords: str
    scale: tuple[int, ...]
    progression: tuple[int, ...]
    swing: float = 0.0  # delay of off-beat notes, as a fraction of the swing unit
    swing_unit: int = 2  # 2: swung eighths, 1: swung sixteenths
    wave: str = "saw"  # chord/lead oscillator: sine, saw, square, pluck
    drive: float = 1.0  # distortion gain (1 = clean)
    brightness: float = 4000.0  # low-pass cutoff in Hz
    attack: float = 0.01  # chord attack in seconds
    decay: float = 0.4  # chord decay time constant in seconds
    lead_density: float = 0.3  # probability of a lead note per eighth
    lead_wave: str = "sine"
    drums: float = 1.0  # drum level
    hat_decay: float = 0.03
    kick_decay: float = 0.25
    seventh: bool = False  # jazz voicings
    walking_bass: bool = False
    bass_octave: int = 36  # MIDI note of the bass register
    loudness_db: float = -16.0  # target RMS in dBFS
    noise_db: float = -60.0  # noise floor in dBFS
    rubato: float = 0.0  # slow tempo wander (classical)


STYLES: dict[str, Style] = {
    "blues": Style(
        tempo=(70, 110),
        kick="x.....x.x.......",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        bass="x.x.x.x.x.x.x.x.",
        chords="x.....x.x.....x.",
        scale=(0, 3, 5, 6, 7, 10, 12),
        progression=(0, 3, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4),
        swing=0.33,
        wave="saw",
        drive=2.0,
        brightness=2500,
        decay=0.5,
        lead_density=0.45,
        lead_wave="saw",
        seventh=True,
        loudness_db=-18,
        noise_db=-48,
    ),
    "classical": Style(
        tempo=(60, 100),
        kick="................",
        snare="................",
        hat="................",
        bass="x.......x.......",
        chords="x...............",
        scale=MAJOR,
        progression=(0, 3, 4, 0, 5, 3, 4, 0),
        wave="saw",
        brightness=1800,
        attack=0.25,
        decay=2.0,
        lead_density=0.5,
        lead_wave="saw",
        drums=0.0,
        loudness_db=-24,
        noise_db=-62,
        rubato=0.08,
    ),
    "country": Style(
        tempo=(95, 140),
        kick="x.......x.......",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        bass="x.......x.......",
        chords="..x...x...x...x.",
        scale=MAJOR,
        progression=(0, 3, 4, 0),
        swing=0.1,
        wave="pluck",
        brightness=5000,
        decay=0.25,
        lead_density=0.35,
        lead_wave="pluck",
        loudness_db=-17,
        noise_db=-55,
    ),
    "disco": Style(
        tempo=(112, 128),
        kick="x...x...x...x...",
        snare="....x.......x...",
        hat="..x...x...x...x.",
        bass="x.x.x.x.x.x.x.x.",
        chords="x.......x.......",
        scale=MINOR,
        progression=(0, 3, 6, 4),
        wave="saw",
        brightness=4500,
        attack=0.05,
        decay=1.0,
        lead_density=0.25,
        lead_wave="square",
        hat_decay=0.15,
        loudness_db=-14,
        noise_db=-62,
    ),
    "hiphop": Style(
        tempo=(80, 98),
        kick="x......x..x.....",
        snare="....x.......x...",
        hat="x.xxx.x.x.xxx.x.",
        bass="x......x..x.....",
        chords="x...............",
        scale=MINOR,
        progression=(0, 0, 5, 4),
        swing=0.25,
        swing_unit=1,
        wave="sine",
        brightness=2200,
        decay=1.5,
        lead_density=0.12,
        lead_wave="sine",
        kick_decay=0.6,
        bass_octave=31,
        loudness_db=-13,
        noise_db=-52,
    ),
    "jazz": Style(
        tempo=(100, 180),
        kick="x...............",
        snare="......o.......o.",
        hat="x...x.xx....x.xx",
        bass="x...x...x...x...",
        chords="...x......x.....",
        scale=DORIAN,
        progression=(1, 4, 0, 0),
        swing=0.33,
        wave="sine",
        brightness=3000,
        decay=0.8,
        lead_density=0.5,
        lead_wave="saw",
        drums=0.5,
        hat_decay=0.2,
        seventh=True,
        walking_bass=True,
        loudness_db=-21,
        noise_db=-55,
    ),
    "metal": Style(
        tempo=(130, 190),
        kick="xxxxxxxxxxxxxxxx",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        bass="xxxxxxxxxxxxxxxx",
        chords="xxxxxxxxxxxxxxxx",
        scale=PHRYGIAN,
        progression=(0, 0, 1, 0),
        wave="saw",
        drive=12.0,
        brightness=5500,
        decay=0.2,
        lead_density=0.2,
        lead_wave="saw",
        bass_octave=28,
        loudness_db=-11,
        noise_db=-45,
    ),
    "pop": Style(
        tempo=(95, 125),
        kick="x...x...x...x...",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        bass="x..x..x.x..x..x.",
        chords="x.......x.......",
        scale=MAJOR,
        progression=(0, 4, 5, 3),
        wave="square",
        brightness=4000,
        attack=0.03,
        decay=1.2,
        lead_density=0.4,
        lead_wave="sine",
        loudness_db=-13,
        noise_db=-62,
    ),
    "reggae": Style(
        tempo=(66, 90),
        kick="........x.......",
        snare="........x.......",
        hat="x.x.x.x.x.x.x.x.",
        bass="x..x..x...x.....",
        chords="..x...x...x...x.",
        scale=MINOR,
        progression=(0, 3, 0, 4),
        swing=0.15,
        wave="square",
        brightness=3000,
        decay=0.12,
        lead_density=0.15,
        lead_wave="sine",
        bass_octave=31,
        loudness_db=-16,
        noise_db=-55,
    ),
    "rock": Style(
        tempo=(100, 145),
        kick="x.......x.x.....",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        bass="x.x.x.x.x.x.x.x.",
        chords="x.x.x.x.x.x.x.x.",
        scale=MIXOLYDIAN,
        progression=(0, 6, 3, 0),
        wave="saw",
        drive=5.0,
        brightness=4500,
        decay=0.35,
        lead_density=0.3,
        lead_wave="saw",
        bass_octave=33,
        loudness_db=-12,
        noise_db=-50,
    ),
}

#: Genres that share traits in real music; a clip sometimes borrows from its neighbour.
NEIGHBOURS = {
    "blues": "jazz",
    "classical": "jazz",
    "country": "rock",
    "disco": "pop",
    "hiphop": "reggae",
    "jazz": "blues",
    "metal": "rock",
    "pop": "disco",
    "reggae": "hiphop",
    "rock": "metal",
}


class SyntheticGTZAN(GTZAN):
    """Generate a GTZAN-like data set on first use, then read it as GTZAN.

    Parameters
    ----------
    root : str or Path
        Where the ``genres_original/`` tree is written.
    clips_per_genre : int
        Clips of each of the ten genres (GTZAN has 100).
    duration : float
        Seconds per clip (GTZAN: 30).
    sample_rate : int
        Rate of the written WAV files and of reading them back.
    seed : int
        Seeds every random choice; same seed, same bytes.
    num_workers : int
        Parallel processes for generation (-1: all cores).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        clips_per_genre: int = 30,
        duration: float = 30.0,
        sample_rate: int = 22050,
        seed: int = 0,
        num_workers: int = -1,
    ):
        super().__init__(root, sample_rate=sample_rate, name="synthetic")
        self.clips_per_genre = int(clips_per_genre)
        self.duration = float(duration)
        self.seed = int(seed)
        self.num_workers = num_workers

    @property
    def params(self) -> dict:
        """Everything that changes the generated bytes."""
        return {
            "clips_per_genre": self.clips_per_genre,
            "duration": self.duration,
            "sample_rate": self.sample_rate,
            "seed": self.seed,
            "version": FORMAT_VERSION,
        }

    def prepare(self) -> None:
        """Write the clips unless a complete set with the same parameters exists."""
        if self._is_complete():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".generate.lock")):  # a second run waits, then finds it done
            if self._is_complete():
                return
            stamp = self.root / "synthetic.json"
            stamp.unlink(missing_ok=True)
            jobs = [(g, i) for g in sorted(STYLES) for i in range(self.clips_per_genre)]
            log.info("generating %d synthetic clips into %s", len(jobs), self.root)
            Parallel(n_jobs=self.num_workers)(delayed(self._write_clip)(g, i) for g, i in jobs)
            stamp.write_text(json.dumps(self.params))
            self.__dict__.pop("_scan", None)  # forget a listing made before the files existed

    def _is_complete(self) -> bool:
        stamp = self.root / "synthetic.json"
        return stamp.exists() and json.loads(stamp.read_text()) == self.params and self._all_present()

    def _path(self, genre: str, index: int) -> Path:
        return self.root / "genres_original" / genre / f"{genre}.{index:05d}.wav"

    def _all_present(self) -> bool:
        return all(self._path(g, i).exists() for g in STYLES for i in range(self.clips_per_genre))

    def _write_clip(self, genre: str, index: int) -> None:
        genre_index = sorted(STYLES).index(genre)
        rng = np.random.default_rng([self.seed, genre_index, index])
        audio = render_clip(genre, rng, self.duration, self.sample_rate)
        path = self._path(genre, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        sf.write(tmp, audio, self.sample_rate, subtype="PCM_16")
        os.replace(tmp, path)


def clip_style(genre: str, rng: np.random.Generator) -> Style:
    """Draw one clip's style: the genre's, perturbed, sometimes crossed with its neighbour."""
    style = STYLES[genre]
    if rng.random() < 0.25:  # borrow a trait from the neighbouring genre
        other = STYLES[NEIGHBOURS[genre]]
        trait = rng.choice(["rhythm", "timbre", "harmony", "tempo"])
        fields = {
            "rhythm": ("kick", "snare", "hat", "swing", "swing_unit"),
            "timbre": ("wave", "drive", "brightness", "decay", "lead_wave"),
            "harmony": ("scale", "progression", "seventh"),
            "tempo": ("tempo",),
        }[str(trait)]
        style = replace(style, **{f: getattr(other, f) for f in fields})

    def jitter(sigma: float) -> float:
        return float(np.exp(rng.normal(0.0, sigma)))

    return replace(
        style,
        kick=_mutate(style.kick, rng, 0.06),
        snare=_mutate(style.snare, rng, 0.04),
        hat=_mutate(style.hat, rng, 0.12),
        bass=_mutate(style.bass, rng, 0.08),
        chords=_mutate(style.chords, rng, 0.08),
        swing=float(np.clip(style.swing + rng.normal(0, 0.05), 0, 0.45)),
        drive=style.drive * jitter(0.35),
        brightness=style.brightness * jitter(0.35),
        decay=style.decay * jitter(0.3),
        lead_density=float(np.clip(style.lead_density * jitter(0.4), 0.02, 0.9)),
        drums=style.drums * jitter(0.3),
        loudness_db=style.loudness_db + rng.normal(0, 2.5),
        noise_db=style.noise_db + rng.normal(0, 5),
    )


def render_clip(genre: str, rng: np.random.Generator, duration: float, sr: int) -> np.ndarray:
    """Render one clip of ``genre`` as float32 mono audio in [-1, 1]."""
    style = clip_style(genre, rng)
    n = round(duration * sr)
    tempo = rng.uniform(*style.tempo)
    key = int(rng.integers(0, 12))
    step_seconds = 60.0 / tempo / 4
    n_steps = int(duration / step_seconds) + STEPS_PER_BAR
    steps = np.arange(n_steps)
    durations = np.full(n_steps, step_seconds)
    if style.rubato:  # the tempo breathes over a phrase of 6 to 12 seconds
        durations *= 1 + style.rubato * np.sin(2 * np.pi * steps * step_seconds / rng.uniform(6, 12))
    onsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    offbeat = (steps % (2 * style.swing_unit)) == style.swing_unit
    onsets = onsets + offbeat * style.swing * style.swing_unit * step_seconds
    onsets = onsets + rng.normal(0, 0.004, n_steps)  # a human drummer
    onset_samples = np.maximum.accumulate(np.clip((onsets * sr).astype(np.int64), 0, None))

    # Sections of 2 or 4 bars: some drop the drums (breakdown) or the lead (intro).
    bar = steps // STEPS_PER_BAR
    section = bar // int(rng.choice([2, 4]))
    n_sections = int(section.max()) + 1
    drums_on = (rng.random(n_sections) > 0.2)[section]
    lead_on = (rng.random(n_sections) > 0.3)[section]

    def hits(pattern: str, mask: np.ndarray | None = None) -> np.ndarray:
        """Velocity of each step for a 16-step pattern tiled over the clip."""
        vel = np.array([{"x": 1.0, "o": 0.4}.get(c, 0.0) for c in pattern])[steps % STEPS_PER_BAR]
        vel = vel * rng.uniform(0.75, 1.0, n_steps)
        return vel if mask is None else vel * mask

    # Harmony: chord root of each step from the progression, voiced in the scale.
    scale = np.asarray(style.scale)
    degree = np.asarray(style.progression)[bar % len(style.progression)]
    chord_degrees = [0, 2, 4, 6] if style.seventh else [0, 2, 4]

    def midi(deg: np.ndarray, base: int) -> np.ndarray:
        octave, idx = np.divmod(deg, len(scale))
        return base + key + 12 * octave + scale[idx]

    out = np.zeros(n, dtype=np.float64)
    t_kick = np.arange(int(0.5 * sr)) / sr
    kick_f = 45 + 90 * np.exp(-t_kick / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(kick_f) / sr) * np.exp(-t_kick / style.kick_decay)
    snare = _noise(rng, int(0.25 * sr), 2000, sr, "high") * np.exp(-np.arange(int(0.25 * sr)) / sr / 0.08)
    snare += 0.6 * np.sin(2 * np.pi * 190 * np.arange(len(snare)) / sr) * np.exp(-np.arange(len(snare)) / sr / 0.04)
    hat = _noise(rng, int(0.3 * sr), 7000, sr, "high") * np.exp(-np.arange(int(0.3 * sr)) / sr / style.hat_decay)
    for pattern, sample, level in ((style.kick, kick, 1.0), (style.snare, snare, 0.7), (style.hat, hat, 0.3)):
        out += style.drums * level * _trigger(onset_samples, hits(pattern, drums_on), sample, n)

    bass_deg = degree * 1
    if style.walking_bass:
        bass_deg = degree + np.cumsum(rng.choice([-1, 1, 1, 2], n_steps)) % 7
    bass_notes = midi(bass_deg, style.bass_octave)
    out += 0.8 * _voice(onset_samples, hits(style.bass), bass_notes, "square", 0.005, 0.3, n, sr, cutoff=600)

    chord_vel = hits(style.chords)
    for d in chord_degrees:
        notes = midi(degree + d, 48)
        out += 0.35 * _voice(
            onset_samples,
            chord_vel,
            notes,
            style.wave,
            style.attack,
            style.decay,
            n,
            sr,
            cutoff=style.brightness,
            drive=style.drive,
        )

    lead_steps = (steps % 2 == 0) & (rng.random(n_steps) < style.lead_density)
    lead_deg = degree + np.cumsum(rng.choice([-2, -1, 0, 1, 2], n_steps))
    lead_deg = np.clip(lead_deg, -3, 12)
    lead_notes = midi(lead_deg, 60 + 12 * (style.lead_wave == "sine"))
    out += 0.45 * _voice(
        onset_samples,
        lead_steps * lead_on * rng.uniform(0.6, 1.0, n_steps),
        lead_notes,
        style.lead_wave,
        0.01,
        0.35,
        n,
        sr,
        cutoff=style.brightness * 1.5,
        drive=max(1.0, style.drive / 2),
        vibrato=True,
    )

    rms = np.sqrt(np.mean(out**2)) + 1e-12
    out *= 10 ** (style.loudness_db / 20) / rms
    out += 10 ** (style.noise_db / 20) * _noise(rng, n, 3000 * float(np.exp(rng.normal(0, 0.5))), sr, "low")
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _mutate(pattern: str, rng: np.random.Generator, p: float) -> str:
    """Flip each step of a pattern with probability ``p``: variation inside a genre."""
    flip = rng.random(len(pattern)) < p
    return "".join(("." if c != "." else "o") if f else c for c, f in zip(pattern, flip))


def _noise(rng: np.random.Generator, n: int, cutoff: float, sr: int, kind: str) -> np.ndarray:
    """White noise through a 2nd-order Butterworth filter (``kind``: low or high)."""
    sos = signal.butter(2, min(cutoff, 0.45 * sr), btype=kind, fs=sr, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n))


def _trigger(onsets: np.ndarray, velocity: np.ndarray, sample: np.ndarray, n: int) -> np.ndarray:
    """Place a drum sample at every step with nonzero velocity (FFT convolution)."""
    impulses = np.zeros(n)
    keep = (velocity > 0) & (onsets < n)
    np.add.at(impulses, onsets[keep], velocity[keep])
    return signal.oaconvolve(impulses, sample)[:n]


def _voice(
    onsets: np.ndarray,
    velocity: np.ndarray,
    notes: np.ndarray,
    wave: str,
    attack: float,
    decay: float,
    n: int,
    sr: int,
    cutoff: float,
    drive: float = 1.0,
    vibrato: bool = False,
) -> np.ndarray:
    """A monophonic instrument: each hit starts a note that rings until the next hit."""
    played = np.flatnonzero((velocity > 0) & (onsets < n))
    if len(played) == 0:
        return np.zeros(n)
    starts = onsets[played]
    lengths = np.diff(np.append(starts, n))
    note_of_sample = np.repeat(np.arange(len(played)), lengths)[: n - starts[0]]
    t = np.arange(starts[0], n) - np.repeat(starts, lengths)[: n - starts[0]]
    t = t / sr
    freq = 440.0 * 2.0 ** ((notes[played][note_of_sample] - 69) / 12)
    if vibrato:
        freq = freq * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * np.arange(len(freq)) / sr))
    phase = np.cumsum(freq / sr)
    if wave == "sine":
        osc = np.sin(2 * np.pi * phase)
    elif wave == "square":
        osc = np.tanh(4 * np.sin(2 * np.pi * phase))
    else:  # saw, and pluck (a saw with a fast decay)
        osc = 2 * (phase % 1.0) - 1
    if wave == "pluck":
        decay = min(decay, 0.15)
    env = np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay) * velocity[played][note_of_sample]
    voice = osc * env
    if drive > 1.0:
        voice = np.tanh(drive * voice) / np.tanh(drive)
    sos = signal.butter(2, min(cutoff, 0.45 * sr), btype="low", fs=sr, output="sos")
    out = np.zeros(n)
    out[starts[0] :] = signal.sosfilt(sos, voice)
    return out
