"""Dagster definitions, one folder per domain; each is a thin layer over the plain-Python modules."""
