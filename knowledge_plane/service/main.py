"""``uvicorn knowledge_plane.service.main:app --no-proxy-headers``: the service configured from the environment.

``--no-proxy-headers`` (``UVICORN_OPTIONS`` in ``knowledge_plane.service.app``): the service itself decides
which proxies' ``X-Forwarded-For`` to believe (``KNOWLEDGE_TRUSTED_PROXIES``).
"""

from knowledge_plane.service.app import create_app

app = create_app()
