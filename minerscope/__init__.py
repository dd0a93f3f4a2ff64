"""minerscope: find cryptomining hidden in encrypted network traffic.

The package is laid out as the pipeline it implements::

    capture -> flows -> features -> model        (stage 1: the classifier)
    prefilter                                     (stage 0: blacklist + plaintext Stratum)
    probe                                         (stage 2: active Stratum probing)
    store                                         (the SQLite case file)
    triage                                        (the headless pipeline that joins them)
    cli, tui                                      (the two front ends; nothing imports them)

Importing ``minerscope`` is cheap on purpose: heavy modules (numba, xgboost, polars,
textual) load only when the code that needs them runs.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
