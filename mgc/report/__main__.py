"""``python -m mgc.report``: the report of finished runs (see :mod:`mgc.report`)."""

from mgc.report import main

main()
