"""Hand-made mutation testing of the modules that compute numbers: does the suite notice a small fault?

    python scripts/mutants.py                 # every mutant
    python scripts/mutants.py split metrics   # only mutants whose name contains one of these words

Each mutant is one small, plausible fault (a transposed confusion matrix, statistics
over all data instead of the training part, a schedule one step off, ...). For each,
the repository is copied into a temporary folder, the fault is planted there (the
working tree is never touched), and the tests that cover that module run against
the copy. A mutant is *killed* when a test fails; a *survivor* is a fault the suite
would let through; a run in which pytest finishes no test (a collection error, an
empty selection: exit 2-5) is an *error*, which says nothing of the fault. Prints a
table and exits 1 unless every mutant is killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    select: str = ""  # a pytest -k expression, to leave out the slow tests of a file


METRICS_TESTS = ("tests/test_metrics.py",)
SPLIT_TESTS = ("tests/test_split.py",)
DATA_TESTS = ("tests/test_exact_features.py", "tests/reliability/test_resume_and_nan.py")
FEATURE_TESTS = ("tests/test_features.py", "tests/test_exact_features.py")
ENSEMBLE_TESTS = ("tests/test_ensemble.py",)
SCHEDULE_TESTS = ("tests/test_scheduler.py", "tests/test_run_claims.py")
KFOLD_TESTS = ("tests/test_kfold.py",)
REPORT_TESTS = ("tests/test_report.py",)
STORE_TESTS = ("tests/test_store.py",)
STORE_QUICK = "not ddp and not run_from_disk and not four_times"  # the subprocess tests, slow and beside the point
AUGMENT_TESTS = ("tests/test_augment.py",)
MODEL_TESTS = ("tests/test_spectrograms.py",)
CNN_TESTS = ("tests/test_models.py",)
PRETRAIN_TESTS = ("tests/test_pretrain.py",)
MUSICNN_TESTS = ("tests/test_musicnn.py",)
SOURCE_TESTS = ("tests/test_sources.py",)

MUTANTS = [
    Mutant(
        "metrics: confusion matrix transposed",
        "mgc/metrics.py",
        "multiclass_confusion_matrix(pred, target, **kw)",
        "multiclass_confusion_matrix(target, pred, **kw)",
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: track score is the sum, not the mean, of log-probabilities",
        "mgc/metrics.py",
        "return sums / counts, labels",
        "return sums, labels",
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: track labels scattered to the wrong tracks",
        "mgc/metrics.py",
        ".scatter_(0, inverse, y)",
        ".scatter_(0, inverse.flip(0), y)",
        METRICS_TESTS,
    ),
    Mutant("metrics: duplicates keep their last occurrence", "mgc/metrics.py", '"amin")', '"amax")', METRICS_TESTS),
    Mutant(
        "metrics: macro-F1 weighted by support",
        "mgc/metrics.py",
        'multiclass_f1_score(pred, target, average="macro"',
        'multiclass_f1_score(pred, target, average="weighted"',
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: loss summed, not averaged",
        "mgc/metrics.py",
        "loss=float(F.nll_loss(logp, y))",
        'loss=float(F.nll_loss(logp, y, reduction="sum"))',
        METRICS_TESTS,
    ),
    Mutant(
        "metrics: a verdict's probability is the true genre's",
        "mgc/metrics.py",
        "round(float(probs[k, p]), 6)",
        "round(float(probs[k, t]), 6)",
        METRICS_TESTS,
    ),
    Mutant(
        "split: tracks not shuffled", "mgc/split.py", "order = rng.permutation(n)", "order = np.arange(n)", SPLIT_TESTS
    ),
    Mutant(
        "split: train absorbs one item too few",
        "mgc/split.py",
        'counts["train"] = n - sum(',
        'counts["train"] = n - 1 - sum(',
        SPLIT_TESTS,
    ),
    Mutant(
        "split: filtered valid and test lists swapped",
        "mgc/split.py",
        '"val": "valid_filtered.txt",',
        '"val": "test_filtered.txt",',
        SPLIT_TESTS,
    ),
    Mutant(
        "split: seed ignored",
        "mgc/split.py",
        "rng = np.random.default_rng(self.seed)",
        "rng = np.random.default_rng(0)",
        SPLIT_TESTS,
    ),
    Mutant(
        "normalisation: statistics of all segments",
        "mgc/datamodule.py",
        "self.mean = x[train].mean(",
        "self.mean = x.mean(",
        DATA_TESTS,
    ),
    Mutant(
        "normalisation: no floor under a constant bin's std",
        "mgc/datamodule.py",
        "x[train].std(dim=(0, 3), keepdim=True)[0].clamp_min(1e-6)",
        "x[train].std(dim=(0, 3), keepdim=True)[0]",
        DATA_TESTS,
    ),
    Mutant(
        "batches: the same order every epoch",
        "mgc/batches.py",
        "manual_seed(self.seed * 100_003 + self.epoch)",
        "manual_seed(self.seed * 100_003)",
        DATA_TESTS,
    ),
    Mutant(
        "features: one dB floor for the whole clip",
        "mgc/features/mel.py",
        "np.stack([librosa.power_to_db(basis @ p, top_db=top_db) for p in power])",
        "librosa.power_to_db(np.stack([basis @ p for p in power]), top_db=top_db)",
        FEATURE_TESTS,
    ),
    Mutant(
        "features: segments_per_clip ignored",
        "mgc/features/base.py",
        "n = min(n, int(self.segments_per_clip))",
        "n = max(n, 0)",
        FEATURE_TESTS,
    ),
    Mutant(
        "features: chroma hop length from n_fft",
        "mgc/features/chroma.py",
        "n_fft=self.n_fft, hop_length=self.hop_length",
        "n_fft=self.n_fft, hop_length=self.n_fft // 2",
        FEATURE_TESTS,
    ),
    Mutant("features: MFCC image upside down", "mgc/features/image.py", "(scaled[::-1])", "(scaled)", FEATURE_TESTS),
    Mutant(
        "schedule: cosine period one step long",
        "mgc/scheduler.py",
        "T_0=max(1, round(period_epochs * steps_per_epoch))",
        "T_0=max(1, round(period_epochs * steps_per_epoch) + 1)",
        SCHEDULE_TESTS,
    ),
    Mutant(
        "schedule: cyclic floor at the peak",
        "mgc/scheduler.py",
        "base_lr=[lr * base_lr_ratio for lr in lrs]",
        "base_lr=lrs",
        SCHEDULE_TESTS,
    ),
    Mutant(
        "schedule: steps per epoch one short",
        "mgc/module.py",
        "math.ceil(self.trainer.num_training_batches / self.trainer.accumulate_grad_batches)",
        "math.ceil((self.trainer.num_training_batches - 1) / self.trainer.accumulate_grad_batches)",
        SCHEDULE_TESTS,
    ),
    Mutant(
        "schedule: plateau waits for a rising loss",
        "mgc/scheduler.py",
        'mode="min", factor=factor',
        'mode="max", factor=factor',
        SCHEDULE_TESTS,
    ),
    Mutant(
        "ensemble: members trained on their averaged output",
        "mgc/module.py",
        "logits, y = logits.flatten(0, 1), y.repeat(len(logits), *[1] * (y.ndim - 1))",
        "logits = mean_log_probability(logits)",
        ENSEMBLE_TESTS,
    ),
    Mutant(
        "ensemble: mean of log-probabilities, not of probabilities",
        "mgc/models/ensemble.py",
        "torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(len(logits))",
        "torch.log_softmax(logits, dim=-1).mean(0)",
        ENSEMBLE_TESTS,
    ),
    Mutant(
        "kfold: each run tests the next fold",
        "mgc/split.py",
        'chosen["test"].append(_join(units, np.flatnonzero(fold_of == self.fold)))',
        'chosen["test"].append(_join(units, np.flatnonzero(fold_of == (self.fold + 1) % self.folds)))',
        KFOLD_TESTS,
        select="not multirun",
    ),
    Mutant(
        "kfold: every genre dealt from the first fold",
        "mgc/split.py",
        "= (dealt + np.arange(n)) % folds",
        "= np.arange(n) % folds",
        KFOLD_TESTS,
        select="not multirun",
    ),
    Mutant(
        "kfold: validation drawn from the test fold too",
        "mgc/split.py",
        "if fold_of[i] != self.fold]",
        "if fold_of[i] >= 0]",
        KFOLD_TESTS,
        select="not multirun",
    ),
    Mutant(
        "cross-validation: population std",
        "mgc/report/cv.py",
        "np.std(values, ddof=1)",
        "np.std(values)",
        REPORT_TESTS,
    ),
    Mutant(
        "cross-validation: seeds not pooled",
        "mgc/report/cv.py",
        "not in (FOLD_KEY, REPEAT_KEY)",
        "not in (FOLD_KEY,)",
        REPORT_TESTS,
    ),
    Mutant(
        "cross-validation: missed tracks ranked by count",
        "mgc/report/cv.py",
        'key=lambda t: (-t["missed"] / t["tested"], -t["missed"], t["track"])',
        'key=lambda t: (-t["missed"], t["track"])',
        REPORT_TESTS,
    ),
    Mutant(
        "cross-validation: the seeds together by majority vote",
        "mgc/report/cv.py",
        "genre == max(scores[0], key=lambda g: np.mean([s[g] for s in scores]))",
        "genre == Counter(max(s, key=s.get) for s in scores).most_common(1)[0][0]",
        REPORT_TESTS,
    ),
    Mutant(
        "cross-validation: a seed template read as one fixed deal",
        "mgc/report/cv.py",
        'if override_key(o) == DEAL_KEY and "${" not in o:',
        "if override_key(o) == DEAL_KEY:",
        REPORT_TESTS,
    ),
    Mutant(
        "predict: a sweep folder's runs by their last checkpoint, not the one they tested",
        "mgc/predict.py",
        'for name in (Path(best).name if best else None, "last.ckpt"):',
        'for name in ("last.ckpt",):',
        ("tests/test_predict.py",),
        select="sweep_folder",
    ),
    Mutant(
        "ensemble: a bagged member learns from the tracks it leaves out",
        "mgc/module.py",
        "keep = left_out_by != number",
        "keep = left_out_by == number",
        ENSEMBLE_TESTS,
    ),
    Mutant(
        "augment: masks keep the band and zero the rest",
        "mgc/augment.py",
        "return torch.from_numpy(~masked).float()",
        "return torch.from_numpy(masked).float()",
        AUGMENT_TESTS,
    ),
    Mutant(
        "augment: mixup labels from another partner",
        "mgc/augment.py",
        "(1 - lam[:, None]) * onehot[partner]",
        "(1 - lam[:, None]) * onehot[partner.flip(0)]",
        AUGMENT_TESTS,
    ),
    Mutant(
        "augment: crops only on the 3-s grid",
        "mgc/augment.py",
        "(rng.random(len(index)) * (self.run_span[place] + 1).numpy()).astype(np.int64)",
        "(rng.random(len(index)) * (self.run_span[place] // self.frames + 1).numpy()).astype(np.int64) * self.frames",
        AUGMENT_TESTS,
    ),
    Mutant(
        "augment: the same draws every epoch",
        "mgc/batches.py",
        "yield indices, (self.seed, self.epoch, number)",
        "yield indices, (self.seed, 0, number)",
        AUGMENT_TESTS,
    ),
    Mutant(
        "augment: gain not divided by the normalisation's std",
        "mgc/datamodule.py",
        "gain = gain / self.std[..., 0]",
        "gain = gain",
        AUGMENT_TESTS,
    ),
    Mutant(
        "augment: log-mel gain moves nothing",
        "mgc/features/logmel.py",
        "return np.ones((1, self.n_mels), dtype=np.float32)",
        "return np.zeros((1, self.n_mels), dtype=np.float32)",
        AUGMENT_TESTS,
    ),
    Mutant(
        "models: clip statistics without the std",
        "mgc/models/stats_linear.py",
        "torch.cat([mean.flatten(1), std.flatten(1)], dim=1)",
        "torch.cat([mean.flatten(1), mean.flatten(1)], dim=1)",
        MODEL_TESTS,
    ),
    Mutant(
        "models: conv blocks pooling without ceil_mode",
        "mgc/models/blocks.py",
        "pool(2, ceil_mode=True)",
        "pool(2)",
        CNN_TESTS,
    ),
    Mutant(
        "models: channels-last weights fed a contiguous input",
        "mgc/models/blocks.py",
        "return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x",
        "return x",
        CNN_TESTS,
    ),
    Mutant(
        "models: global max pool splits its gradient among tied maxima",
        "mgc/models/blocks.py",
        "x.flatten(2).max(2).values",
        "x.amax((2, 3))",
        CNN_TESTS,
    ),
    Mutant(
        "pretrain: cache key blind to the trainer (its epochs)",
        "mgc/pretrain.py",
        "settings.update(trainer=trainer, seed=pre.seed,",
        "settings.update(seed=pre.seed,",
        PRETRAIN_TESTS,
    ),
    Mutant(
        "pretrain: cache key blind to the pretraining's data",
        "mgc/pretrain.py",
        'SHAPES_THE_WEIGHTS = ("data", ',
        "SHAPES_THE_WEIGHTS = (",
        PRETRAIN_TESTS,
    ),
    Mutant(
        "pretrain: work folder renamed into the cache before it finished",
        "mgc/pretrain.py",
        "    train(pre)\n    os.replace(last, cache)",
        "    try:\n        train(pre)\n    finally:\n        os.replace(last, cache)",
        PRETRAIN_TESTS,
    ),
    Mutant(
        "pretrain: built after the run seeds its random numbers",
        "mgc/train.py",
        "    init_from = pretrain.starting_weights(cfg, train_and_test)\n"
        "    L.seed_everything(cfg.seed, workers=True, verbose=False)",
        "    L.seed_everything(cfg.seed, workers=True, verbose=False)\n"
        "    init_from = pretrain.starting_weights(cfg, train_and_test)",
        PRETRAIN_TESTS,
    ),
    Mutant(
        "musicnn: kernels read in TensorFlow's (time, freq) order as if (freq, time)",
        "mgc/models/musicnn.py",
        'tensors[f"{tf_name}/kernel"].transpose(3, 2, 1, 0).copy()',
        'np.ascontiguousarray(tensors[f"{tf_name}/kernel"].transpose(3, 2, 0, 1)).reshape('
        'tensors[f"{tf_name}/kernel"].transpose(3, 2, 1, 0).shape)',
        MUSICNN_TESTS,
        select="tensorflow_graphs",
    ),
    Mutant(
        "musicnn: even temporal kernels padded one more frame at the start than at the end",
        "mgc/models/musicnn.py",
        "return (kernel - 1) // 2, kernel // 2",
        "return kernel // 2, (kernel - 1) // 2",
        MUSICNN_TESTS,
        select="tensorflow_graphs",
    ),
    Mutant(
        "musicnn: the input patch cast to float16 before the log, as the package does",
        "mgc/features/musicnn.py",
        "for p in power]).astype(np.float32)",
        "for p in power]).astype(np.float16)",
        MUSICNN_TESTS,
        select="log_mel",
    ),
    Mutant(
        "musicnn: PyTorch's batch-norm epsilon instead of TensorFlow's",
        "mgc/models/musicnn.py",
        'TF_BN = {"eps": 1e-3, "momentum": 0.01}',
        'TF_BN = {"eps": 1e-5, "momentum": 0.01}',
        MUSICNN_TESTS,
        select="tensorflow_graphs",
    ),
    Mutant(
        "musicnn: back-end pools concatenated [max | mean] instead of TensorFlow's interleaved pairs",
        "mgc/models/musicnn.py",
        "torch.stack([max_pool, mean_pool], dim=2).flatten(1)",
        "torch.cat([max_pool, mean_pool], dim=1)",
        MUSICNN_TESTS,
        select="tensorflow_graphs",
    ),
    Mutant(
        "musicnn: a frozen stage's batch norm left in train mode (its statistics drift)",
        "mgc/models/musicnn.py",
        "            stage.eval()\n",
        "            pass\n",
        MUSICNN_TESTS,
        select="frozen",
    ),
    Mutant(
        "split: groups ignored (an artist's tracks dealt apart)",
        "mgc/split.py",
        "units = _group_units(features.track_groups, track_labels) if features.track_groups else None",
        "units = None",
        SOURCE_TESTS,
        select="group",
    ),
    Mutant(
        "split: a group filed under the genre fewest of its tracks have",
        "mgc/split.py",
        "np.bincount(track_labels[indices]).argmax()",
        "np.bincount(track_labels[indices]).argmin()",
        SOURCE_TESTS,
        select="group",
    ),
    Mutant(
        "store: rows read one row further into their shard",
        "mgc/features/store.py",
        "offset = shard.offset + (int(rows[a]) - shard.first) * size",
        "offset = shard.offset + (int(rows[a]) - shard.first + 1) * size",
        STORE_TESTS,
        select=STORE_QUICK,
    ),
    Mutant(
        "store: a job's shards taken as a block, not every num_shards-th",
        "mgc/features/base.py",
        "shard is None or s % num_shards == shard",
        "shard is None or s // num_shards == shard",
        STORE_TESTS,
        select=STORE_QUICK,
    ),
    Mutant(
        "store: a rerun rebuilds the shards already built",
        "mgc/features/store.py",
        "        if (folder / SHARD_INDEX).is_file():  # built by an earlier run, or by another process meanwhile\n"
        "            return False\n",
        "",
        STORE_TESTS,
        select=STORE_QUICK,
    ),
    Mutant(
        "store: streamed statistics with the population variance",
        "mgc/datamodule.py",
        "/ max(count - 1, 1)",
        "/ max(count, 1)",
        STORE_TESTS,
        select=STORE_QUICK,
    ),
    Mutant(
        "store: batches from disk not normalised",
        "mgc/batches.py",
        "return x if self.mean is None else (x - self.mean) / self.std",
        "return x",
        STORE_TESTS,
        select=STORE_QUICK,
    ),
]


def copy_repo(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "outputs", "__pycache__", ".pytest_cache", "*.egg-info")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def run_mutant(m: Mutant) -> tuple[str, float]:
    """Plant ``m`` in a copy of the repository and run its tests there: ``killed`` when a test fails,
    ``SURVIVED`` when they pass, ``ERROR (pytest exit N)`` when pytest ran no test to the end (collection
    error, nothing selected), which proves nothing about the fault."""
    with tempfile.TemporaryDirectory(prefix="mgc-mutant-") as tmp:
        copy = Path(tmp) / "repo"
        copy_repo(copy)
        target = copy / m.file
        source = target.read_text()
        if source.count(m.original) != 1:
            raise SystemExit(
                f"mutant '{m.name}': {m.file} holds {source.count(m.original)} copies of its original "
                f"text (need exactly 1); update scripts/mutants.py"
            )
        target.write_text(source.replace(m.original, m.mutated))
        env = {**os.environ, "PYTHONPATH": str(copy)}  # the copy's mgc and conf/ come first
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests, "-k", m.select],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        outcome = {0: "SURVIVED", 1: "killed"}.get(out.returncode, f"ERROR (pytest exit {out.returncode})")
        return outcome, seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/mutants.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("words", nargs="*", help="run only the mutants whose name contains one of these words")
    words = parser.parse_args(argv).words
    chosen = [m for m in MUTANTS if not words or any(word in m.name for word in words)]
    if not chosen:  # a mistyped filter must not read as "0 of 0 killed", a pass
        print(f"no mutant's name contains {' or '.join(map(repr, words))}; the names are listed in scripts/mutants.py")
        return 2
    results = []
    print("| mutant | tests | result | seconds |\n|---|---|---|---|")
    for m in chosen:
        result, seconds = run_mutant(m)
        results.append(result)
        tests = ", ".join(Path(t).name for t in m.tests) + (f" -k '{m.select}'" if m.select else "")
        print(f"| {m.name} | {tests} | {result} | {seconds:.0f} |", flush=True)
    print(f"\n{results.count('killed')} of {len(chosen)} mutants killed")
    return 0 if results.count("killed") == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
