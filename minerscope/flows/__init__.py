"""Flows: packet batches become bidirectional flows with columnar time series."""
