"""Probe kinds against real daemons."""
