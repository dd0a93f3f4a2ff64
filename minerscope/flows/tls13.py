# mypy: disable-error-code="no-untyped-def"
"""TLS 1.3 hides the rest of its handshake in application-data records; find them.

From the ServerHello on, a TLS 1.3 server sends EncryptedExtensions, Certificate,
CertificateVerify and Finished inside records of content type 23 (application data), and
the client answers with its Finished in one more. On the wire they look like the first
application messages of the flow, so a pool connection under TLS 1.3 would start with a
few kilobytes of "messages" that carry no Stratum at all (PROTOCOLS.md: TLS adds a
near-constant overhead per record, not extra records). Features read only application
messages, so these records are relabelled ``TLS_HANDSHAKE`` (22, what they carry).

Which flows: a server whose first application-data record follows its handshake records
with no handshake record after a ChangeCipherSpec. TLS 1.2 sends its Finished as a
handshake record (type 22) after ChangeCipherSpec; TLS 1.3 sends nothing but type 23 after
the ServerHello (a compatibility ChangeCipherSpec may come between). A piece of a flow
that starts after its handshake (a capture begun mid-flow, an active-timeout cut) has no
server handshake record, and nothing is relabelled.

What: the server's application-data records before the client's first one, and the
client's first one (its Finished; a client certificate would add records this rule keeps,
a rarity for mining and web clients alike). NewSessionTicket records sent after the
client's Finished stay messages: nothing on the wire tells them from the server's first
reply.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from minerscope.flows.records import DIR_S2C, TLS_APPLICATION_DATA, TLS_CHANGE_CIPHER_SPEC, TLS_HANDSHAKE


@njit(cache=True)
def _relabel(offsets, direction, content_type) -> int:  # pragma: no cover - compiled
    changed = 0
    for f in range(offsets.shape[0] - 1):
        a, b = offsets[f], offsets[f + 1]
        hello = -1  # the server's first handshake record (its ServerHello)
        server_ccs = False
        tls13 = False
        for i in range(a, b):
            if direction[i] != DIR_S2C:
                continue
            t = content_type[i]
            if t == TLS_HANDSHAKE:
                if server_ccs:
                    break  # TLS 1.2: Finished as a handshake record after ChangeCipherSpec
                if hello < 0:
                    hello = i
            elif t == TLS_CHANGE_CIPHER_SPEC:
                server_ccs = True
            elif t == TLS_APPLICATION_DATA:
                tls13 = hello >= 0
                break
        if not tls13:
            continue
        for i in range(hello, b):  # 0-RTT early data before the ServerHello is application data
            if content_type[i] != TLS_APPLICATION_DATA:
                continue
            if direction[i] != DIR_S2C:
                content_type[i] = TLS_HANDSHAKE  # the client's Finished
                changed += 1
                break
            content_type[i] = TLS_HANDSHAKE  # EncryptedExtensions .. server Finished
            changed += 1
    return changed


def relabel_encrypted_handshake(
    offsets: npt.NDArray[np.int64], direction: npt.NDArray[np.uint8], content_type: npt.NDArray[np.uint8]
) -> int:
    """Relabel, in place, the TLS 1.3 handshake records hidden as application data.

    Args:
        offsets: CSR offsets of each flow's messages (in time order within a flow).
        direction: 0 client to server, 1 server to client, per message.
        content_type: TLS content type per message (0: not a TLS record); rewritten.

    Returns:
        How many records were relabelled.
    """
    if offsets.shape[0] < 2:
        return 0
    return int(_relabel(offsets, direction, content_type))
