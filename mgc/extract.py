"""Extract (and cache) features without training, optionally exporting a data_10.json.

    mgc-extract                                                 # mfcc-json of the synthetic set
    mgc-extract features=chroma data=gtzan data.root=/data/gtzan
    python scripts/extract.py export_json=data_10.json          # the classic JSON format
    mgc-extract shard=0 num_shards=4                            # one job's quarter of the store (conf/extract.yaml)

Only the ``data``, ``features`` and ``paths`` groups matter here: a bad
``optim.lr`` does not stop an extraction. Prints the clip rate of the
extraction (including the cache load, so a cached set reads as fast).
"""

from __future__ import annotations

import time

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from mgc.cli import CONF_DIR, hydra_command, user_errors_exit
from mgc.config import check_set
from mgc.data.base import Source
from mgc.errors import MgcError
from mgc.features import export_json
from mgc.features.base import Extractor


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="extract")
@user_errors_exit
def hydra_main(cfg: DictConfig) -> None:
    check_set(cfg, ("paths", "data", "features"))
    source, features = instantiate(cfg.data), instantiate(cfg.features)
    source.prepare()  # generation (synthetic) is not part of the extraction time
    if cfg.shard is not None:
        extract_share(features, source, int(cfg.shard), int(cfg.num_shards))
        return
    start = time.perf_counter()
    data = features.extract(source)
    elapsed = time.perf_counter() - start
    clips = len(data.track_ids)
    print(
        f"{features.name}: {clips} clips, {len(data)} segments of shape {data.x.shape[1:]} "
        f"in {elapsed:.1f} s ({clips / elapsed:.1f} clips/s including cache load)"
    )
    if cfg.get("export_json"):
        print(f"wrote {export_json(data, cfg.export_json)}")


def extract_share(features: Extractor, source: Source, shard: int, num_shards: int) -> None:
    """Build one job's shards of the store (``s % num_shards == shard``); a later run without ``shard`` indexes."""
    if not 0 <= shard < num_shards:
        raise MgcError(f"shard={shard} num_shards={num_shards}: shard must be 0 .. num_shards-1")
    start = time.perf_counter()
    built = features.extract_shards(source, shard, num_shards)
    store = features.store_path(source)
    print(
        f"{features.name} shard {shard} of {num_shards}: built {built} shard(s) in {time.perf_counter() - start:.1f} s "
        f"into {store}.partial; index the store with mgc-extract without shard= once every job is done"
    )


#: ``mgc-extract ...`` / ``python scripts/extract.py ...``
main = hydra_command(hydra_main)


if __name__ == "__main__":
    main()
