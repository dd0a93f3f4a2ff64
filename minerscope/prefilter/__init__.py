"""Stage 0 of detection: evidence that needs no model (pool blacklists, plaintext Stratum).

:mod:`~minerscope.prefilter.blacklist` parses indicator lists and matches flows;
:mod:`~minerscope.prefilter.stage0` writes the evidence into the flow table's ``stage0``
column. Stage-0 hits are still scored by stage 1; the verdict combines both.
"""
