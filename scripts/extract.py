"""Extract (and cache) features without training: ``python scripts/extract.py features=chroma`` (see mgc/extract.py)."""

from mgc.extract import main

main()
