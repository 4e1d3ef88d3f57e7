"""Entry point for `flask --app app ...` (gunicorn serves `netweave:create_app()`)."""

from netweave import create_app

app = create_app()
