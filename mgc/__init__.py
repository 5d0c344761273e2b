"""mgc: config-driven music genre classification experiments (GTZAN)."""

__version__ = "0.2.0"
