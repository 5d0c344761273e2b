"""The feature store on disk (mgc.features.store): shards written atomically and resumed, sharded extraction
over jobs bit-identical to one process, rows read on demand, and a data module that trains from it as from
memory."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, TINY
from hydra.utils import instantiate

from mgc.augment import Augment
from mgc.bench.store import EPOCH_CHILD
from mgc.datamodule import GenreDataModule, streamed_statistics
from mgc.errors import MgcError
from mgc.features import MFCC
from mgc.features.store import SegmentStore, building
from mgc.metrics import RunMetrics
from mgc.split import TrackSplit
from mgc.train import build_datamodule

SHARD = 7  # clips per shard: the 40 tiny clips make 6 shards, the last one short


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def one_process(tiny_source, tmp_path_factory) -> tuple[MFCC, Path]:
    """The store of the tiny clips as one process extracts it."""
    features = MFCC(cache_dir=str(tmp_path_factory.mktemp("one")), shard_clips=SHARD)
    features.extract(tiny_source)
    return features, features.store_path(tiny_source)


def test_two_jobs_and_an_index_make_the_one_process_store_bit_for_bit(tiny_source, one_process, tmp_path):
    _, reference = one_process
    jobs = MFCC(cache_dir=str(tmp_path), shard_clips=SHARD)
    assert [jobs.extract_shards(tiny_source, shard, 2) for shard in (1, 0)] == [3, 3]  # shards 1,3,5 then 0,2,4
    assert jobs.extract_shards(tiny_source, 1, 2) == 0  # done: a rerun of a job builds nothing
    store = jobs.store_path(tiny_source)
    assert not (store / "index.json").exists() and len(list((building(store) / "shards").glob("*/shard.json"))) == 6
    jobs.extract(tiny_source)  # the final step: nothing left to build, the index is written
    assert store.name == reference.name and tree(store) == tree(reference)
    index = json.loads((store / "index.json").read_text())
    assert [s["tracks"] for s in index["shards"]] == [7, 7, 7, 7, 7, 5]


@pytest.mark.slow  # subprocesses or a training run
def test_two_extraction_processes_at_once_and_an_index_make_the_one_process_store(
    one_process, make_cfg, tmp_path, shared_dir
):
    """``mgc-extract shard=0 num_shards=2`` and ``shard=1`` running side by side, then the final indexing step."""
    _, reference = one_process
    common = [*TINY, f"paths.outputs={tmp_path}", f"paths.data_dir={shared_dir / 'data'}"]
    common += [f"paths.cache_dir={tmp_path / 'cache'}", f"features.shard_clips={SHARD}", "num_shards=2"]
    script = [sys.executable, str(ROOT / "scripts" / "extract.py")]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "cwd": tmp_path}
    jobs = [subprocess.Popen([*script, f"shard={i}", *common], **pipes) for i in (0, 1)]
    printed = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], printed
    assert "mfcc shard 0 of 2: built 3 shard(s)" in printed[0] and "mfcc shard 1 of 2: built 3 shard(s)" in printed[1]
    cfg = make_cfg(f"features.shard_clips={SHARD}")
    cfg.paths.cache_dir = str(tmp_path / "cache")
    features = instantiate(cfg.features)
    assert features.extract_shards(instantiate(cfg.data)) == 0  # every shard is built: nothing left for this step
    data = features.extract(instantiate(cfg.data))  # the final step: the index
    (index,) = (tmp_path / "cache").glob("mfcc-*/index.json")
    assert tree(index.parent) == tree(reference) and len(data.track_ids) == 40  # the tiny set: tiny_source's clips


def test_an_interrupted_extraction_keeps_whole_shards_and_resumes_at_the_first_missing(
    tiny_source, one_process, tmp_path, monkeypatch
):
    _, reference = one_process
    features = MFCC(cache_dir=str(tmp_path), shard_clips=SHARD)
    real, calls = MFCC._extract, []

    def killed_in_the_third_shard(self, clips):
        calls.append(clips[0].track_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the job is killed while it extracts
        return real(self, clips)

    monkeypatch.setattr(MFCC, "_extract", killed_in_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        features.extract(tiny_source)
    partial = building(features.store_path(tiny_source))
    assert sorted(p.name for p in (partial / "shards").iterdir() if p.is_dir()) == ["00000", "00001"]
    assert all((p / "shard.json").is_file() for p in (partial / "shards").iterdir() if p.is_dir())
    monkeypatch.setattr(MFCC, "_extract", lambda self, clips: calls.append(clips[0].track_id) or real(self, clips))
    calls.clear()
    features.extract(tiny_source)
    assert len(calls) == 4  # shards 2 to 5 only
    assert tree(features.store_path(tiny_source)) == tree(reference)


def test_jobs_must_cut_the_clips_into_the_same_shards(tiny_source, tmp_path):
    MFCC(cache_dir=str(tmp_path), shard_clips=SHARD).extract_shards(tiny_source, 0, 2)
    with pytest.raises(MgcError, match=r"holds shards of \{'clips': 40, 'shard_clips': 7\}, not .*'shard_clips': 8"):
        MFCC(cache_dir=str(tmp_path), shard_clips=8).extract_shards(tiny_source, 1, 2)


def test_the_store_reads_any_rows_as_the_in_memory_set_holds_them(tiny_source, one_process):
    features, _ = one_process
    in_memory = features.extract(tiny_source)
    on_disk = features.extract(tiny_source, in_memory=False)
    store = on_disk.x
    assert isinstance(store, SegmentStore) and store.shape == in_memory.x.shape and store.dtype == np.float32
    rows = np.random.default_rng(0).permutation(len(store))[:50]  # across every shard, in any order
    np.testing.assert_array_equal(store[rows], in_memory.x[rows])
    np.testing.assert_array_equal(store[5:17], in_memory.x[5:17])
    np.testing.assert_array_equal(store[np.int64(3)], in_memory.x[3])
    np.testing.assert_array_equal(np.asarray(store), in_memory.x)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(store))[rows], in_memory.x[rows])  # a worker process
    assert (on_disk.track_ids, on_disk.labels.tolist()) == (in_memory.track_ids, in_memory.labels.tolist())
    with pytest.raises(IndexError):
        store[[len(store)]]


def test_streamed_statistics_are_the_in_memory_ones(tiny_source, one_process):
    features, _ = one_process
    data = features.extract(tiny_source)
    rows = np.flatnonzero(data.tracks % 3 != 0)
    x = torch.from_numpy(data.x)[rows]
    mean, std = streamed_statistics(features.extract(tiny_source, in_memory=False).x, rows[::-1].copy())
    torch.testing.assert_close(mean, x.mean(dim=(0, 3), keepdim=True)[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(std, x.std(dim=(0, 3), keepdim=True)[0], rtol=1e-5, atol=1e-5)


def datamodule(source, cache: str, store: str, augment: Augment | None = None) -> GenreDataModule:
    split = TrackSplit("track_80_10_10", {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    features = MFCC(cache_dir=cache, shard_clips=SHARD)
    dm = GenreDataModule(source, features, split, batch_size=16, seed=3, augment=augment, store=store)
    dm.setup()
    return dm


@pytest.mark.parametrize("augment", [None, Augment(random_crop=True, gain_db=3, time_masks=1, mixup_alpha=0.3)])
def test_batches_from_disk_are_the_batches_from_memory(tiny_source, one_process, augment):
    cache = str(one_process[0].cache_dir)
    memory, disk = datamodule(tiny_source, cache, "memory", augment), datamodule(tiny_source, cache, "disk", augment)
    assert isinstance(disk.data.x, SegmentStore) and isinstance(memory.data.x, np.ndarray)
    torch.testing.assert_close(disk.mean, memory.mean, rtol=1e-5, atol=1e-4)
    for part in ("train", "val", "test"):
        loaders = [getattr(dm, f"{'train' if part == 'train' else part}_dataloader")() for dm in (memory, disk)]
        for dm_loader in loaders:
            dm_loader.sampler.set_epoch(2)
        for a, b in zip(*loaders, strict=True):
            torch.testing.assert_close(a.x, b.x, rtol=1e-4, atol=1e-4)
            for name in ("y", "track", "index"):
                torch.testing.assert_close(getattr(a, name), getattr(b, name))


def test_auto_keeps_a_small_set_in_memory_and_a_large_one_on_disk(tiny_source, one_process):
    cache = str(one_process[0].cache_dir)
    assert isinstance(datamodule(tiny_source, cache, "auto").data.x, np.ndarray)
    dm = GenreDataModule(
        tiny_source, MFCC(cache_dir=cache, shard_clips=SHARD), TrackSplit("t", {"train": 1.0}), memory_gb=1e-4
    )
    dm.setup()  # 40 clips of MFCC: about 0.5 MB, over a budget of 0.1 MB
    assert isinstance(dm.data.x, SegmentStore)
    with pytest.raises(MgcError, match=r"datamodule.store=cloud: one of auto, memory, disk"):
        GenreDataModule(tiny_source, MFCC(), TrackSplit("t", {"train": 1.0}), store="cloud")


@pytest.mark.slow  # subprocesses or a training run
def test_a_run_from_disk_scores_as_a_run_from_memory(make_cfg, tmp_path):
    from mgc.train import train_and_test

    runs = []
    for store in ("memory", "disk"):
        cfg = make_cfg("model=mlp", "trainer.max_epochs=2", f"datamodule.store={store}", "logger=none")
        cfg.paths.run_dir = str(tmp_path / store)
        runs.append(train_and_test(cfg))
    memory, disk = runs
    assert disk.test.track.accuracy == pytest.approx(memory.test.track.accuracy, abs=0.05)
    assert disk.test.loss == pytest.approx(memory.test.loss, rel=1e-3)


@pytest.mark.slow  # subprocesses or a training run
def test_an_epoch_from_a_store_four_times_the_memory_it_may_use(tmp_path):
    """Peak RSS over an epoch grows by less than a quarter of the store's size: the store never loads whole."""
    features = MFCC(cache_dir=str(tmp_path))
    rng = np.random.default_rng(0)
    kept = [(_clip(i), rng.standard_normal((4, 1, 128, 512), dtype=np.float32)) for i in range(200)]  # 200 MB
    cache = tmp_path / "big"
    features.write_cache(cache, kept, ["blues", "rock"])
    out = subprocess.run([sys.executable, "-c", EPOCH_CHILD, str(cache)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"] == 800 and result["store_mb"] == pytest.approx(200, rel=0.01)
    assert result["peak_mb"] - result["before_mb"] < result["store_mb"] / 4, result


def _clip(i: int):
    from mgc.data.base import Clip

    genre = ("blues", "rock")[i % 2]
    return Clip(Path(f"{genre}.{i:05d}.wav"), genre, f"{genre}.{i:05d}")


@pytest.mark.slow  # subprocesses or a training run
def test_ddp_on_cpu_ranks_read_disjoint_shares_of_the_store(make_cfg, tmp_path, shared_dir):
    """Two CPU processes under DDP (gloo): each reads its own batches from disk, together the training part;
    evaluation gathers every test segment once, and only rank 0 writes.

    Lightning deals the sampler's batches to the ranks, padding with a repeated batch when their count is
    odd: batches of 20 make 4 of the 80 training segments here, so the shares are exactly disjoint."""
    dm = build_datamodule(make_cfg("model=linear"))
    dm.setup()
    train = set(dm.parts["train"].index.tolist())
    assert len(train) == 80
    out = tmp_path / "rows"
    args = [*TINY, "model=linear", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    args += ["trainer.max_epochs=1", "datamodule.store=disk", "datamodule.batch_size=20", "logger=none"]
    args += [f"paths.outputs={tmp_path}", f"paths.data_dir={shared_dir / 'data'}"]
    args += [f"paths.cache_dir={shared_dir / 'cache'}"]
    args += ["+callbacks.rows._target_=helpers.RecordRows", f"+callbacks.rows.out={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    run = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["held"] for r in ranks] == ["SegmentStore", "SegmentStore"] and ranks[0]["world_size"] == 2
    first, second = (set(r["rows"]) for r in ranks)
    assert len(first) == len(second) == 40 and not first & second  # disjoint halves
    assert first | second == train
    (metrics,) = [RunMetrics.read(p) for p in tmp_path.glob("runs/*/*/metrics.json")]  # only rank 0 writes
    assert metrics.world_size == 2 and metrics.test.segments == 40  # every test segment once, from both ranks
    assert sum(line.startswith("split track_80_10_10 (") for line in run.stdout.splitlines()) == 1
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in run.stdout + run.stderr
