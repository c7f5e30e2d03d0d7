"""Opply ordering backend."""

__version__ = "1.2.0"
