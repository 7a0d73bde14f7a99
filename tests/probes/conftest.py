"""Shared setup of the probe tests."""

# exporter.probes.base imports gardien.config.types, whose package imports the config model, which
# imports exporter.probes.base: importing gardien.config first breaks that cycle for test modules
# that start with ``from exporter.probes...``.
import gardien.config  # noqa: F401
