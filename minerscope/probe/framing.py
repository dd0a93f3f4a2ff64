"""Bounded sans-IO line framing for JSON-RPC over TCP/TLS."""
