"""The one ordered, versioned list of stage-1 feature names, and its hash.

Names follow the grammar *direction + series + statistic + unit* (nfstream style):
``c2s_msg_size_mean_bytes``, ``bidir_msg_iat_p90_s``, ``s2c_iat_period_s``. The direction is one of ``c2s``
(client->server), ``s2c`` (server->client) or ``bidir`` (both); the last token is always
a unit from :data:`UNITS`.

The list is built here, once, by small explicit tables, and nowhere else. The feature
extractor (:mod:`minerscope.features.series`) must produce exactly these columns in this
order, and :func:`schema_hash` (sha256 over the version and the ordered names) is written
into every model's sidecar: a model trained on another list is refused at load time
instead of silently reading the wrong columns.

What is deliberately *not* a feature: ports, addresses, absolute timestamps, the TLS
handshake records (certificate sizes are a property of the lab's self-signed
certificates, not of mining), and the transport flag (``is_tls``/UDP): each would let a
model learn where the training captures came from instead of what mining looks like.
Bump :data:`SCHEMA_VERSION` whenever a definition changes, even if the names do not.
Version 2: TLS 1.3's encrypted handshake records (type 23 on the wire) are no longer
application messages (:mod:`minerscope.flows.tls13`), so the handshake stays out of the
message series under TLS 1.3 as it always did under TLS 1.2.
"""

from __future__ import annotations

import hashlib

SCHEMA_VERSION = 2

DIRECTIONS = ("c2s", "s2c", "bidir")

UNITS = ("bytes", "s", "ratio", "count", "bits", "per_min", "bytes_per_s", "flag")

FIRST_N_MESSAGES = 8
"""How many of a flow's first application messages are features (size and direction)."""

SMALL_MSG_BYTES = 128
"""A message at most this long is 'small' (Stratum job/submit/ack sizes, before TLS overhead)."""

LARGE_MSG_BYTES = 1024

# (statistic, unit); "@" stands for the series' own unit.
_FULL_STATS: tuple[tuple[str, str], ...] = (
    ("sum", "@"),
    ("mean", "@"),
    ("std", "@"),
    ("min", "@"),
    ("max", "@"),
    ("p10", "@"),
    ("p25", "@"),
    ("p50", "@"),
    ("p75", "@"),
    ("p90", "@"),
    ("skew", "ratio"),
    ("kurt", "ratio"),
    ("entropy", "bits"),
    ("cv", "ratio"),
    ("trend", "@"),
)

_SERIES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    # application message sizes (TLS record lengths, or payload per packet)
    (
        "msg_size",
        "bytes",
        (*_FULL_STATS, ("share_small", "ratio"), ("share_large", "ratio")),
    ),
    # inter-arrival times of application messages
    (
        "msg_iat",
        "s",
        (
            *[s for s in _FULL_STATS if s[0] != "sum"],
            ("acf1", "ratio"),
            ("acf2", "ratio"),
            ("acf3", "ratio"),
            ("share_lt1s", "ratio"),
            ("share_gt30s", "ratio"),
        ),
    ),
    # packet sizes on the wire (every packet, including bare ACKs)
    (
        "pkt_size",
        "bytes",
        (
            ("sum", "@"),
            ("mean", "@"),
            ("std", "@"),
            ("min", "@"),
            ("max", "@"),
            ("p10", "@"),
            ("p50", "@"),
            ("p90", "@"),
            ("entropy", "bits"),
            ("cv", "ratio"),
        ),
    ),
    # packet inter-arrival times
    (
        "pkt_iat",
        "s",
        (
            ("mean", "@"),
            ("std", "@"),
            ("max", "@"),
            ("p10", "@"),
            ("p50", "@"),
            ("p90", "@"),
            ("cv", "ratio"),
            ("skew", "ratio"),
            ("acf1", "ratio"),
        ),
    ),
    # wire bytes per time bin (BINS bins over the sample)
    (
        "bin_bytes",
        "bytes",
        (
            ("mean", "@"),
            ("std", "@"),
            ("max", "@"),
            ("cv", "ratio"),
            ("share_empty", "ratio"),
            ("acf1", "ratio"),
        ),
    ),
    # packets per time bin
    ("bin_pkts", "count", (("mean", "@"), ("std", "@"), ("max", "@"), ("cv", "ratio"))),
    # periodicity of the binned application-message series
    (
        "iat",
        "s",
        (
            ("period", "@"),
            ("period_strength", "ratio"),
            ("acf_peak_lag", "@"),
            ("acf_peak", "ratio"),
        ),
    ),
)

_PER_DIRECTION_SCALARS: tuple[str, ...] = (
    "msg_count",
    "pkt_count",
    "msg_rate_per_min",
    "pkt_rate_per_min",
    "byte_rate_bytes_per_s",
    "psh_share_ratio",
    "ackonly_share_ratio",
)

_BIDIR_SCALARS: tuple[str, ...] = (
    "bidir_syn_count",
    "bidir_fin_count",
    "bidir_rst_count",
    "bidir_dir_changes_count",
    "bidir_dir_change_rate_ratio",
    "c2s_run_max_count",
    "s2c_run_max_count",
    "bidir_msg_small_run_max_count",
    "bidir_burst_count",
    "bidir_burst_pkts_mean_count",
    "bidir_burst_pkts_max_count",
    "bidir_burst_bytes_mean_bytes",
    "bidir_burst_bytes_max_bytes",
    "bidir_burst_duration_mean_s",
    "bidir_burst_duration_max_s",
    "bidir_burst_rate_per_min",
    "bidir_reqresp_count",
    "bidir_reqresp_share_ratio",
    "bidir_reqresp_delay_mean_s",
    "bidir_reqresp_delay_p50_s",
    "bidir_reqresp_delay_max_s",
    "bidir_reqresp_size_ratio_mean_ratio",
    "s2c_unsolicited_count",
    "s2c_unsolicited_share_ratio",
    "c2s_unanswered_share_ratio",
    "bidir_byte_symmetry_ratio",
    "bidir_pkt_symmetry_ratio",
    "bidir_msg_byte_symmetry_ratio",
    "bidir_msg_count_symmetry_ratio",
    "bidir_payload_share_ratio",
    "bidir_duration_s",
    "bidir_idle_max_s",
    "bidir_idle_gt30s_count",
    "bidir_idle_gt60s_count",
    "bidir_idle_share_ratio",
)


def _build() -> tuple[str, ...]:
    names: list[str] = []
    for direction in DIRECTIONS:
        for series, unit, stats in _SERIES:
            for stat, stat_unit in stats:
                names.append(f"{direction}_{series}_{stat}_{unit if stat_unit == '@' else stat_unit}")
        names.extend(f"{direction}_{scalar}" for scalar in _PER_DIRECTION_SCALARS)
    names.extend(_BIDIR_SCALARS)
    for i in range(1, FIRST_N_MESSAGES + 1):
        names.append(f"bidir_msg{i}_size_bytes")
        names.append(f"bidir_msg{i}_dir_flag")
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _build()
"""Every candidate feature, in column order."""


def schema_hash(names: tuple[str, ...] | list[str] = FEATURE_NAMES, version: int = SCHEMA_VERSION) -> str:
    """sha256 (hex) of the schema version and the ordered feature names."""
    digest = hashlib.sha256(f"minerscope-features-v{version}\n".encode())
    for name in names:
        digest.update(name.encode())
        digest.update(b"\n")
    return digest.hexdigest()


SCHEMA_HASH = schema_hash()
