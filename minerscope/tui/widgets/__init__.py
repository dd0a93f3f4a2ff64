"""Widgets of the workstation; each shows data it is handed and holds no pipeline logic."""
