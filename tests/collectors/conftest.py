"""Shared setup of the node collector tests."""

# break the gardien.config <-> gardien.probes import cycle the same way tests/probes does
import gardien.config  # noqa: F401
