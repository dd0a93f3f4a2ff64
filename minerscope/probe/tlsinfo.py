"""What a probed TLS endpoint's certificate says about it, read from the DER bytes.

The prober never verifies certificates (pools use self-signed ones, and we want to talk
to them anyway), so the certificate is evidence, not trust: subject and issuer names,
SANs, validity window, self-signedness and a SHA-256 fingerprint that analysts can pivot
on across hosts. Every string comes from the remote party and is made inert with
:func:`minerscope.untrusted.clean` before it is stored here. A certificate that does
not parse is a :class:`~minerscope.errors.RemoteProtocolError`, never a crash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509

from minerscope.errors import RemoteProtocolError
from minerscope.untrusted import clean

MAX_CERT_BYTES = 64 * 1024
"""A security limit: larger "certificates" are refused unparsed."""

_NAME_CHARS = 256


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """The parts of a peer certificate worth showing and storing (all text already inert)."""

    subject: str
    issuer: str
    sha256: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool
    san: tuple[str, ...]

    def valid_at(self, when: dt.datetime) -> bool:
        """True when ``when`` (timezone-aware) falls in the validity window."""
        return self.not_before <= when <= self.not_after

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (timestamps in ISO 8601 UTC)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sha256": self.sha256,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "self_signed": self.self_signed,
            "san": list(self.san),
        }


def fingerprint(der: bytes) -> str:
    """SHA-256 of the DER certificate as lowercase hex (the usual pivot value)."""
    return hashlib.sha256(der).hexdigest()


def parse_certificate(der: bytes) -> CertificateInfo:
    """Parse a DER certificate received from a peer.

    Raises:
        RemoteProtocolError: the bytes are empty, larger than :data:`MAX_CERT_BYTES`,
            or not a certificate.
    """
    if not der:
        raise RemoteProtocolError("peer presented no certificate")
    if len(der) > MAX_CERT_BYTES:
        raise RemoteProtocolError(f"peer certificate of {len(der)} bytes exceeds {MAX_CERT_BYTES}")
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc
        serial = format(cert.serial_number, "x")
    except (ValueError, TypeError) as exc:
        raise RemoteProtocolError(f"peer certificate does not parse: {clean(exc, 120)}") from None
    return CertificateInfo(
        subject=clean(subject, _NAME_CHARS),
        issuer=clean(issuer, _NAME_CHARS),
        sha256=fingerprint(der),
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        self_signed=cert.subject == cert.issuer,
        san=_san(cert),
    )


def _san(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    except ValueError:  # a malformed extension is the peer's problem; show none
        return ()
    names: list[str] = [clean(n, _NAME_CHARS) for n in ext.value.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(names[:32])
