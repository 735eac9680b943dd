"""Hostile, broken and large inputs, one module per surface (issue 12)."""
