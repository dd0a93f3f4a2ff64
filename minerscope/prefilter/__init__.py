"""prefilter package."""
