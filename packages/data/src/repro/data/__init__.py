"""repro.data."""

__version__ = "0.2.0"
