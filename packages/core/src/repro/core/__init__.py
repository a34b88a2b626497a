"""repro.core: seeding, provenance, atomic I/O, checkpoints, tables and the figure style.

Submodules are imported lazily so that light callers (the Snakefile's config check) do not
pay for torch or matplotlib.
"""

__version__ = "0.1.0"


class ReproError(Exception):
    """An error with a one-line message meant for the user (bad input, missing data)."""
