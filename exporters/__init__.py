"""Prometheus exporter, Grafana dashboard, rules and deployment manifests."""
