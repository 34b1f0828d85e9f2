"""Strongroom: a self-hostable fintech core."""

__version__ = "0.1.0"
