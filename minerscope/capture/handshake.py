"""Pure parsers of cleartext handshake metadata (TLS ClientHello, DNS, HTTP)."""
