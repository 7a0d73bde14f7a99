"""Failover engine, node agent, Alertmanager webhook receiver and the operator CLI."""
