"""emulate package."""
