"""WSGI entry point: ``gunicorn opply.entrypoints.wsgi:app``, configured from the environment."""

from opply.entrypoints.app import create_app

app = create_app()
