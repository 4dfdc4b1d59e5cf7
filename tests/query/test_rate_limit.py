"""Rate limits: 10 requests a minute per key; 10 failed authentications a minute per client address,
charged only by failures; X-Forwarded-For believed only from the configured proxies."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from starlette.requests import Request

from knowledge_plane.service.ratelimit import RateLimit, client_address
from knowledge_plane.settings import ServiceSettings
from tests.query.support import headers

BAD_KEY = {"X-API-Key": "guess-00000000000000"}


def ask(client, actor=None, extra: dict[str, str] | None = None):
    return client.post("/knowledge/query", json={"question": "garantie"},
                       headers={**(headers(actor) if actor else BAD_KEY), **(extra or {})})


def test_the_eleventh_request_of_a_key_in_a_minute_is_429(make_client):
    client = make_client(rate_limit_per_minute=10)
    for _ in range(10):
        assert ask(client, "chatbot_prod").status_code == 200
    response = ask(client, "chatbot_prod")
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # another key has its own budget
    assert ask(client, "support_prod").status_code == 200


def test_failed_authentication_is_limited_per_address(make_client):
    client = make_client(rate_limit_per_minute=10)
    for _ in range(10):
        assert ask(client).status_code == 401
    response = ask(client)
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


def test_guessing_from_an_address_never_locks_out_a_valid_key_from_it(make_client):
    # Behind the compose proxy every client shares one address: guesses must not lock everyone out.
    client = make_client(rate_limit_per_minute=10)
    for _ in range(15):
        assert ask(client).status_code in (401, 429)
    assert ask(client).status_code == 429
    assert ask(client, "chatbot_prod").status_code == 200
    assert client.get("/knowledge/health", headers=headers("support_prod")).status_code == 200


def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_client):
    client = make_client(rate_limit_per_minute=10, peer=("10.0.0.7", 41000), trusted_proxies="10.0.0.0/24")
    for i in range(10):  # the client forges the left part; the proxy appends what it saw
        assert ask(client, extra={"X-Forwarded-For": f"9.9.9.{i}, 203.0.113.5"}).status_code == 401
    assert ask(client, extra={"X-Forwarded-For": "9.9.9.99, 203.0.113.5"}).status_code == 429
    assert ask(client, extra={"X-Forwarded-For": "203.0.113.6"}).status_code == 401  # another client


def test_forwarded_for_is_ignored_from_an_untrusted_peer(make_client):
    client = make_client(rate_limit_per_minute=10, peer=("127.0.0.1", 41000))
    for i in range(10):
        assert ask(client, extra={"X-Forwarded-For": f"198.51.100.{i}"}).status_code == 401
    assert ask(client, extra={"X-Forwarded-For": "198.51.100.200"}).status_code == 429


def test_rotating_forwarded_for_through_uvicorn_gets_no_fresh_budget(make_client, built, embedder):
    # uvicorn's own default believes X-Forwarded-For from 127.0.0.1 and rewrites the client address
    # before the service sees it; the options `knowledge serve` runs uvicorn with turn that off.
    from knowledge_plane.service.app import UVICORN_OPTIONS, create_app
    from tests.query.support import keys_env, settings_for

    app = create_app(settings_for(built), ServiceSettings(api_keys=keys_env(), rate_limit_per_minute=10), embedder)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/knowledge/query"
        codes = [httpx.post(url, json={"question": "garantie"}, headers={**BAD_KEY, "X-Forwarded-For": f"192.0.2.{i}"},
                            timeout=30).status_code for i in range(11)]
        assert codes == [401] * 10 + [429]
    finally:
        server.should_exit = True
        thread.join(30)


def _request(peer: str, *forwarded: str) -> Request:
    raw = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 1), "headers": raw, "method": "GET", "path": "/"})


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "expected"), [
    ("127.0.0.1", ["1.2.3.4"], "", "127.0.0.1"),                              # nothing trusted by default
    ("10.0.0.1", ["1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),
    ("10.0.0.1", ["6.6.6.6, 1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),              # right-most untrusted
    ("10.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.9"], "10.0.0.0/8", "1.2.3.4"),  # two proxies, two headers
    ("10.0.0.1", ["10.0.0.3, 10.0.0.9"], "10.0.0.0/8", "10.0.0.3"),          # all hops ours: the first
    ("10.0.0.1", [], "10.0.0.0/8", "10.0.0.1"),
    ("192.0.2.1", ["1.2.3.4"], "10.0.0.0/8", "192.0.2.1"),                   # not our proxy
    ("::1", ["1.2.3.4"], "::1", "1.2.3.4"),
])
def test_client_address(peer, forwarded, proxies, expected):
    assert client_address(_request(peer, *forwarded), ServiceSettings.parse_networks(proxies)) == expected


def test_an_invalid_trusted_proxy_fails_at_start_up():
    with pytest.raises(ValueError, match="KNOWLEDGE_TRUSTED_PROXIES: 'proxy.local'"):
        ServiceSettings(trusted_proxies="10.0.0.0/8, proxy.local")


def test_the_limit_counts_per_key():
    limit = RateLimit("unit", 3)
    assert [limit.hit("k") for _ in range(3)] == [0, 0, 0]
    assert 1 <= limit.hit("k") <= 60
    assert limit.hit("other") == 0
