"""Tests: exporter."""
