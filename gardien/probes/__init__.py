"""Probe kinds: one module each, behind the contract of :mod:`gardien.probes.base`."""
