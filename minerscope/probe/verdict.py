"""Frozen probe verdict and evidence records."""
