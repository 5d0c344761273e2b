"""mgc: config-driven music genre classification experiments (GTZAN)."""

__version__ = "0.1.0"
