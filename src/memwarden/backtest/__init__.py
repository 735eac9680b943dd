"""memwarden backtest: replay memory curves, recorded traces or a Prometheus' history through the rules."""
