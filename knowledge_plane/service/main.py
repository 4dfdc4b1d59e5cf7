"""``uvicorn knowledge_plane.service.main:app --no-proxy-headers``: the service configured from the environment.

``--no-proxy-headers`` (``UVICORN_OPTIONS`` in ``knowledge_plane.service.app``): the service itself decides
which proxies' ``X-Forwarded-For`` to believe (``KNOWLEDGE_TRUSTED_PROXIES``). Logs are JSON lines
(``knowledge_plane.service.logging``).
"""

from knowledge_plane.service.app import create_app
from knowledge_plane.service.logging import configure_json_logging

configure_json_logging()
app = create_app()
