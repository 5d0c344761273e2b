"""Extract (and cache) features without training, optionally exporting a data_10.json.

    mgc-extract                                                 # mfcc-json of the synthetic set
    mgc-extract features=chroma data=gtzan data.root=/data/gtzan
    python scripts/extract.py +export_json=data_10.json         # the classic JSON format

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
from mgc.features import export_json


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@user_errors_exit
def hydra_main(cfg: DictConfig) -> None:
    check_set(cfg, ("paths", "data", "features"))
    source, features = instantiate(cfg.data), instantiate(cfg.features)
    source.prepare()  # generation (synthetic) is not part of the extraction time
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


#: ``mgc-extract ...`` / ``python scripts/extract.py ...``
main = hydra_command(hydra_main)


if __name__ == "__main__":
    main()
