"""Import xgboost without the scikit-learn import it makes for its estimator wrappers.

Scoring only uses ``Booster``; scikit-learn costs about half a CPU second of start-up (a
tenth of a 2M-packet scan, and much of the workstation's time to first rows). The scan
workers, the workstation's triage child (through
:func:`minerscope.triage.load_triage_stack`) and the live session import xgboost through here.
"""

from __future__ import annotations

import sys


def import_xgboost_without_sklearn() -> None:
    """Import xgboost while scikit-learn is hidden, unless either is imported already.

    Hiding it (``sys.modules[name] = None``: xgboost sees "not installed") only for the
    duration of that one import leaves scikit-learn importable afterwards, for code that
    uses it directly (``evaluate``); only xgboost's own scikit-learn wrappers lose their mixins.
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    try:
        import xgboost  # noqa: F401
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]
