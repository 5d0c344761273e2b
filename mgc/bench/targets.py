"""Every target the benchmarks are held to, in one place: bench.json and the printed table both read them here.

A target is a ratio against a baseline measured in the same run (``speedup_*``, ``*_vs_plain``) or a
numerical agreement (``max_abs_diff``); each benchmark copies its entry into its part of bench.json.
"""

#: MFCC extraction on synthetic clips: vs the classic sequential loop (A), vs the same loop under joblib (B),
#: and agreement with librosa's per-segment MFCC.
EXTRACTION = {"speedup_vs_a": 3.0, "speedup_vs_b": 1.3, "max_abs_diff": 1e-4}
#: MFCC extraction on a real GTZAN folder (``--data-root``): the same, with 4x vs the classic loop.
REAL_EXTRACTION = EXTRACTION | {"speedup_vs_a": 4.0}
#: log-mel extraction: agreement with ``power_to_db(melspectrogram)`` per segment, in dB.
LOGMEL = {"max_abs_diff": 1e-4}
#: Loading 1000 clips' MFCC from mgc's cache vs ``json.load`` of the equivalent data_10.json.
LOADING = {"speedup": 50.0}
#: Training throughput of mgc's Lightning pipeline vs a plain PyTorch loop on the same model and data.
TRAINING = {"lightning_vs_plain": 0.95}
#: The musicnn encoder as mgc runs it during extraction vs a plain PyTorch loop over the same patches.
MUSICNN = {"encoder_vs_plain": 0.95}
#: Training from the feature store on disk: the GRU's samples/s vs from memory, and peak RSS of an epoch over
#: a store four times larger vs over the store.
STORE = {"disk_vs_memory": 0.9, "peak_rss_4x_vs_1x": 1.10}
