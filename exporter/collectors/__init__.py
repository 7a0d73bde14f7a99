"""Node-level collectors: volumes, VIPs, network reachability, SMART."""
