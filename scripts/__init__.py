"""Operator and build scripts (not deployed: see .funcignore)."""
