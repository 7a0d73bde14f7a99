"""Probe kinds: one module each, behind the contract of :mod:`exporter.probes.base`."""
