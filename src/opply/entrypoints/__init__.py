"""Entrypoints: the Flask app and HTTP API, the admin site, the CLI, and the DI container."""
