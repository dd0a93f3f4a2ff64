"""The traffic lab: labelled captures of mining and benign encrypted traffic on a simulated clock.

Why a lab: public mining captures are few, plaintext and old; the traffic minerscope must
judge is encrypted and mixed with look-alike benign sessions. The lab produces as much of
both as training and evaluation need, deterministic per seed, with the dialects spoken
through the project's own builders (:mod:`minerscope.probe.dialects`) and TLS that is
real OpenSSL, so nothing about it is a second, drifting implementation.

Modules (import what you need; this package imports nothing heavy):

* :mod:`~minerscope.lab.generate` -- ``generate(LabConfig, out_dir)``, ``plan_sessions``,
  ``render``/``render_session`` of :class:`SessionSpec` lists in a :class:`World`;
* :mod:`~minerscope.lab.mining`, :mod:`~minerscope.lab.mining_alt` -- pool/miner scripts
  (pool, proxy, solo over HTTP JSON-RPC, browser over WebSocket) with the PROTOCOLS.md
  cadence; :mod:`~minerscope.lab.coins` + ``coins.json`` -- the coin registry (data);
* :mod:`~minerscope.lab.benign` -- hard-negative and bulk benign sessions;
* :mod:`~minerscope.lab.session`, :mod:`~minerscope.lab.netsim`, :mod:`~minerscope.lab.tls`,
  :mod:`~minerscope.lab.ws`, :mod:`~minerscope.lab.dns` -- scripts -> TCP/UDP frames,
  real TLS records, WebSocket frames, DNS messages;
* :mod:`~minerscope.lab.wrap` -- ``wrap_tls(src, dst)``: a real plaintext capture re-wrapped in TLS;
* :mod:`~minerscope.lab.labels`, :mod:`~minerscope.lab.datasets` -- the labels CSV and the
  loaders that put lab output and real manifests behind one :class:`CaptureEntry` shape;
* :mod:`~minerscope.lab.sample` -- the bundled demo capture (``minerscope lab sample``).
"""
