"""``python -m mgc.bench``: the benchmarks (see :mod:`mgc.bench`)."""

from mgc.bench import cli

cli()
