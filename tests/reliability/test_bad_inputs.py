"""Bad audio, bad folders, killed and concurrent extractions: real files, real processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import write_tone

from mgc.data import GTZAN
from mgc.errors import MgcError
from mgc.features import MFCC


def test_every_kind_of_bad_audio_is_used_or_skipped(tmp_path, caplog):
    root = tmp_path / "genres"
    for g in ("blues", "rock"):
        write_tone(root / g / f"{g}.00000.wav", 6.5)
    bad = {
        "blues.00001.wav": lambda p: p.write_bytes(b""),  # zero bytes
        "blues.00002.wav": lambda p: p.write_bytes((root / "blues/blues.00000.wav").read_bytes()[:30]),  # header cut
        "blues.00003.wav": lambda p: p.write_text("this is a text file"),  # not audio
        "blues.00004.wav": lambda p: write_tone(p, 1.0),  # 1 s
        "rock.00005.wav": lambda p: sf.write(p, np.full(22050 * 7, np.nan, np.float32), 22050, subtype="FLOAT"),
    }
    used = {
        "rock.00001.wav": lambda p: sf.write(p, np.zeros(22050 * 7), 22050),  # silence
        "rock.00002.wav": lambda p: write_tone(p, 6.5, sr=44100, channels=2),  # stereo 44.1 kHz
        "rock.00003.wav": lambda p: write_tone(p, 6.5, subtype="PCM_U8"),  # 8-bit
        "rock.00004-ñandú.wav": lambda p: write_tone(p, 6.5),  # non-ASCII name
    }
    for name, make in {**bad, **used}.items():
        make(root / name.split(".")[0] / name)
    feats = MFCC(cache_dir=tmp_path / "cache").extract(GTZAN(tmp_path))
    assert sorted(feats.track_ids) == sorted(["blues.00000", "rock.00000"] + [n[:-4] for n in used])
    assert np.isfinite(feats.x).all() and len(feats) == 2 * len(feats.track_ids)
    skipped = next((tmp_path / "cache").glob("mfcc-*/skipped.txt")).read_text().splitlines()
    assert sorted(line.split("\t")[0].rsplit("/", 1)[1] for line in skipped) == sorted(bad)
    assert len(skipped) + len(feats.track_ids) == len(bad) + len(used) + 2  # the counts add up
    assert any("not finite" in line or "NaN" in line for line in skipped)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == len(bad) and all(w.count("\n") == 0 for w in warnings)


def test_bad_folders_skip_or_fail_in_one_line(tmp_path):
    root = tmp_path / "data"
    for g in ("blues", "rock"):
        write_tone(root / g / f"{g}.00000.wav", 3.5)
    (root / "empty_genre").mkdir()
    (root / ".DS_Store").write_text("x")
    (root / "README").write_text("x")
    os.symlink(root, root / "rock" / "loop")  # a symlink loop
    os.symlink(root / "nowhere", root / "blues" / "dangling.wav")
    assert GTZAN(root).genres == ["blues", "rock"]
    assert [c.track_id for c in GTZAN(root).clips()] == ["blues.00000", "rock.00000"]
    for bad_root, message in ((tmp_path / "missing", "does not exist"), (root / "empty_genre", "no genre folders")):
        with pytest.raises(MgcError, match=message) as err:
            GTZAN(bad_root).clips()
        assert "\n" not in str(err.value)


EXTRACT = (
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that
    # (nohup, `make test &`): the extraction takes Ctrl-C's KeyboardInterrupt back, as in a terminal.
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from mgc.data import GTZAN; from mgc.features import MFCC; "
    "MFCC(cache_dir={cache!r}, num_workers=1).extract(GTZAN({root!r}))"
)


def _many_clips(tmp_path, n=24):
    root = tmp_path / "genres"
    for g in ("blues", "rock"):
        for i in range(n // 2):
            write_tone(root / g / f"{g}.{i:05d}.wav", 30.0, freq=200 + 10 * i)
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_extraction_leaves_no_cache_and_the_rerun_matches(tmp_path, sig):
    data = _many_clips(tmp_path, n=80)
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", EXTRACT.format(cache=str(cache), root=str(data))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not list(cache.glob("*.lock")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # mid-extraction: 80 clips of 30 s take about a second on one worker
    assert proc.poll() is None, "the extraction finished before it could be interrupted"
    proc.send_signal(sig)
    # A rare Ctrl-C goes unnoticed: Python loses a KeyboardInterrupt raised where errors are swallowed
    # (a __del__, a C callback; a librosa.load loop shows it). Press it again, as a user would.
    deadline = time.time() + 30
    while sig == signal.SIGINT and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
        proc.send_signal(sig)
    assert proc.wait(timeout=60) != 0
    assert not list(cache.glob("mfcc-*/index.json"))  # nothing a later run would read
    resumed = MFCC(cache_dir=cache).extract(GTZAN(data))
    reference = MFCC(cache_dir=tmp_path / "reference").extract(GTZAN(data))
    np.testing.assert_array_equal(resumed.x, reference.x)
    assert resumed.track_ids == reference.track_ids


def test_two_processes_extract_the_same_features_at_once(tmp_path):
    data = _many_clips(tmp_path, n=8)
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EXTRACT.format(cache=str(cache), root=str(data))], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    assert len(list(cache.glob("mfcc-*/index.json"))) == 1
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]
    feats = MFCC(cache_dir=cache).extract(GTZAN(data))
    assert len(feats) == 8 * 10 and np.isfinite(feats.x).all()


def _discover_as_nobody(root: Path) -> dict:
    """GTZAN discovery in a forked child that drops root privileges (root reads everything)."""
    import json
    import logging

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)  # nobody
            warnings: list[str] = []
            handler = logging.Handler(logging.WARNING)
            handler.emit = lambda record: warnings.append(record.getMessage())
            logging.getLogger("mgc").addHandler(handler)
            result = {"ids": [c.track_id for c in GTZAN(root).clips()], "warnings": warnings}
        except BaseException as err:
            result = {"error": repr(err)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_unreadable_genre_folder_is_skipped_with_one_warning():
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mgc-perm-"))
    try:
        root.chmod(0o755)
        for g in ("blues", "jazz", "rock"):
            write_tone(root / g / f"{g}.00000.wav", 3.5)
        (root / "jazz").chmod(0o000)
        result = _discover_as_nobody(root)
        assert result.get("ids") == ["blues.00000", "rock.00000"], result
        assert len(result["warnings"]) == 1
        assert "jazz" in result["warnings"][0] and "Permission denied" in result["warnings"][0]
    finally:
        (root / "jazz").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
