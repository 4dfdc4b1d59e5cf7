"""``uvicorn query_service.main:app``: the service configured from the environment."""

from query_service.app import create_app

app = create_app()
