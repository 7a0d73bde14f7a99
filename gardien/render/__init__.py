"""``gardien render``: the Prometheus rules, scrape config, Alertmanager config and Grafana
dashboards for one cluster config, built as data (never string templates)."""
