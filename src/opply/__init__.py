"""Opply ordering backend."""

__version__ = "1.0.0"
