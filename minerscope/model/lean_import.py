"""Import xgboost without the scikit-learn import it makes for its estimator wrappers.

Scoring only uses ``Booster``; scikit-learn costs about half a CPU second of start-up (a
tenth of a 2M-packet scan, and much of the workstation's time to first rows). The scan
workers and the workstation's triage child both import the triage stack through here.
"""

from __future__ import annotations

import gc
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


_settled = False


def import_triage_stack() -> None:
    """Import everything triage needs (xgboost as above), then freeze the objects alive now.

    The imports leave ~140k tracked objects (numba's type system, polars, xgboost) that live
    as long as the process; without ``gc.freeze`` every full collection a scan triggers walks
    them again: ~0.2 CPU s of a 2M-packet scan, for garbage that cannot be there. Frozen
    once per process, on first use, so objects a later capture leaves behind stay collectable.
    """
    global _settled
    import_xgboost_without_sklearn()
    import minerscope._pipeline  # noqa: F401  (capture, flows, stage 0: numba, polars)
    import minerscope.model.classify  # noqa: F401  (features, scoring)

    if not _settled:
        _settled = True
        # numba loads its lowering registries (~50k objects) on the first kernel call;
        # loading them now puts them under the freeze too (what a 2M-packet scan's full
        # collections walked dropped from ~54k objects to ~3k)
        try:
            from numba.core.registry import cpu_target

            cpu_target.target_context.refresh()
        except (ImportError, AttributeError):  # another numba layout: only slower
            pass
        gc.freeze()
