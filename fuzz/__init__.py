"""Coverage-guided fuzzing of minerscope's parsers of hostile bytes.

Every parser that reads bytes an attacker controls (a capture file, a TLS or DNS message
inside it, a probed server's replies) is a *target* here (:mod:`fuzz.targets`): one
function that takes fuzzer bytes, drives the parser and checks what "correct" means for
it beyond "did not crash": only the documented error types escape, outputs stay within
their named limits, and the pcap reader keeps exactly the complete packets before any
cut. The same targets serve two drivers:

* ``python -m fuzz.run --target NAME --seconds N``: an atheris (libFuzzer) campaign that
  prints executions, exec/s, line/branch coverage of the target's modules and crashes;
* ``tests/fuzz/test_smoke.py``: the committed seed corpus (``fuzz/corpus/<target>/``,
  rebuilt by ``python -m fuzz.make_corpus``) plus a short hypothesis run, in the suite.

A target raises :class:`~fuzz.targets.PropertyFailure` when an invariant breaks; any
exception that is neither that nor an allowed error type is a crash.
"""
