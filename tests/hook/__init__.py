"""Tests: hook."""
