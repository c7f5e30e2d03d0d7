"""Adapters: the ports implemented on SQLAlchemy, argon2, PyJWT, and in memory."""
