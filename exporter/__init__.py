"""The per-node exporter: real probes of clustered services and node-level collectors."""
