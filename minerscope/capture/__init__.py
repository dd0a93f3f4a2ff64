"""Capture: bytes from pcap/pcapng files (or a live interface) become packet batches."""
