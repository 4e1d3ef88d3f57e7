"""Entry point: `flask --app app ...` for the CLI, `gunicorn app:app` for the web."""

from netweave import create_app

app = create_app()
