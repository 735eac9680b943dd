"""`memwarden up`: the whole loop on one machine: exporter, real Prometheus and Alertmanager, responder, demo hogs."""
