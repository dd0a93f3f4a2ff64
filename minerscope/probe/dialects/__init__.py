"""probe/dialects package."""
