"""The analyst workstation (Textual). Nothing outside this package imports it."""
