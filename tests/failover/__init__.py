"""Tests: failover."""
