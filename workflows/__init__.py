"""Deterministic payment workflows: no I/O, clocks or randomness here."""
