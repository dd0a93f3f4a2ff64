"""Tests for minerscope.probe.dialects."""
