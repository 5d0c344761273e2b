"""The synthetic GTZAN's genres as data: one :class:`Style` per genre and how a clip draws its own.

A style is a genre's recipe (drum patterns, tempo range, scale and progression, timbre, mix); the
renderer in :mod:`mgc.data.synthetic` plays it. Keeping the tables here lets a reader tune a genre
without reading the signal code, and the renderer stay short.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DORIAN = (0, 2, 3, 5, 7, 9, 10)
MIXOLYDIAN = (0, 2, 4, 5, 7, 9, 10)
PHRYGIAN = (0, 1, 3, 5, 7, 8, 10)
STEPS_PER_BAR = 16


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
        kick=mutate(style.kick, rng, 0.06),
        snare=mutate(style.snare, rng, 0.04),
        hat=mutate(style.hat, rng, 0.12),
        bass=mutate(style.bass, rng, 0.08),
        chords=mutate(style.chords, rng, 0.08),
        swing=float(np.clip(style.swing + rng.normal(0, 0.05), 0, 0.45)),
        drive=style.drive * jitter(0.35),
        brightness=style.brightness * jitter(0.35),
        decay=style.decay * jitter(0.3),
        lead_density=float(np.clip(style.lead_density * jitter(0.4), 0.02, 0.9)),
        drums=style.drums * jitter(0.3),
        loudness_db=style.loudness_db + rng.normal(0, 2.5),
        noise_db=style.noise_db + rng.normal(0, 5),
    )


def mutate(pattern: str, rng: np.random.Generator, p: float) -> str:
    """Flip each step of a pattern with probability ``p``: variation inside a genre."""
    flip = rng.random(len(pattern)) < p
    return "".join(("." if c != "." else "o") if f else c for c, f in zip(pattern, flip))
