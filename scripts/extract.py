"""Extract (and cache) features without training, optionally exporting a data_10.json.

    python scripts/extract.py                                   # mfcc-json of the synthetic set
    python scripts/extract.py features=chroma data=gtzan data.root=/data/gtzan
    python scripts/extract.py +export_json=data_10.json         # the classic JSON format

Prints the clip rate of the extraction (0 clips/s when the cache was already there).
"""

from __future__ import annotations

import sys
import time

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from mgc.errors import MgcError
from mgc.features import export_json
from mgc.train import CONF_DIR, check_config


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        check_config(cfg)
        source, features = instantiate(cfg.data), instantiate(cfg.features)
        source.prepare()  # generation (synthetic) is not part of the extraction time
        start = time.perf_counter()
        data = features.extract(source)
        elapsed = time.perf_counter() - start
        clips = len(data.track_ids)
        print(f"{features.name}: {clips} clips, {len(data)} segments of shape {data.x.shape[1:]} "
              f"in {elapsed:.1f} s ({clips / elapsed:.1f} clips/s including cache load)")
        if cfg.get("export_json"):
            print(f"wrote {export_json(data, cfg.export_json)}")
    except MgcError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
