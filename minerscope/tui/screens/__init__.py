"""Screens of the workstation: flows, flow detail, probe, pools and the small dialogs."""
