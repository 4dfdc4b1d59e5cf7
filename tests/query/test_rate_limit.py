"""Rate limits: 10 requests a minute per end user of an actor (X-End-User-ID, else the client
address), a budget per actor, a block after repeated refusals, shared across uvicorn workers through
Redis; 10 failed authentications a minute per client address, charged only by failures;
X-Forwarded-For believed only from the configured proxies."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from starlette.requests import Request

from knowledge_plane.service.ratelimit import END_USER_HEADER, RateLimit, client_address, end_user
from knowledge_plane.settings import ServiceSettings
from tests.query.support import PROJECT_ROOT, headers, keys_env, registry_url_of

BAD_KEY = {"X-API-Key": "guess-00000000000000"}


def ask(client, actor=None, extra: dict[str, str] | None = None):
    return client.post("/knowledge/query", json={"question": "garantie"},
                       headers={**(headers(actor) if actor else BAD_KEY), **(extra or {})})


def user(name: str) -> dict[str, str]:
    return {END_USER_HEADER: name}


def test_the_eleventh_request_of_an_end_user_in_a_minute_is_429_and_nobody_elses(make_client):
    client = make_client(rate_limit_per_minute=10, rate_limit_per_actor_per_minute=1000)
    for _ in range(10):
        assert ask(client, "chatbot_prod", user("customer-1")).status_code == 200
    response = ask(client, "chatbot_prod", user("customer-1"))
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # the other customers behind the same key, and the same name under another key, have their own budgets
    assert ask(client, "chatbot_prod", user("customer-2")).status_code == 200
    assert ask(client, "support_prod", user("customer-1")).status_code == 200


def test_without_an_end_user_header_the_client_address_is_the_end_user(make_client):
    client = make_client(rate_limit_per_minute=10, rate_limit_per_actor_per_minute=1000,
                         peer=("10.0.0.7", 41000), trusted_proxies="10.0.0.0/24")
    for _ in range(10):
        assert ask(client, "chatbot_prod", {"X-Forwarded-For": "203.0.113.5"}).status_code == 200
    assert ask(client, "chatbot_prod", {"X-Forwarded-For": "203.0.113.5"}).status_code == 429
    assert ask(client, "chatbot_prod", {"X-Forwarded-For": "203.0.113.6"}).status_code == 200


def test_the_actor_budget_caps_all_its_end_users_together(make_client):
    client = make_client(rate_limit_per_minute=10, rate_limit_per_actor_per_minute=5)
    assert [ask(client, "chatbot_prod", user(f"c{i}")).status_code for i in range(6)] == [200] * 5 + [429]
    assert ask(client, "support_prod", user("c0")).status_code == 200


def test_repeated_refusals_block_the_end_user_for_the_block_duration(make_client):
    client = make_client(rate_limit_per_minute=3, rate_limit_per_actor_per_minute=1000, rate_limit_block_after=2,
                         rate_limit_block_seconds=300)
    codes = [ask(client, "chatbot_prod", user("abuser")) for _ in range(6)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429, 429]
    assert int(codes[3].headers["retry-after"]) <= 60  # a first refusal: wait for the window
    assert int(codes[4].headers["retry-after"]) == 300  # the second starts the block
    assert 290 <= int(codes[5].headers["retry-after"]) <= 300  # and every later one says what is left
    assert ask(client, "chatbot_prod", user("someone-else")).status_code == 200


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
    from tests.query.support import settings_for

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


def test_the_end_user_header_is_hashed_and_wins_over_the_address():
    request = Request({"type": "http", "client": ("127.0.0.1", 1), "method": "GET", "path": "/",
                       "headers": [(b"x-end-user-id", b"customer@example.com")]})
    name = end_user(request, ())
    assert name.startswith("id:") and "example" not in name
    assert end_user(_request("127.0.0.1"), ()) == "ip:127.0.0.1"


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of its own on loopback (Debian's package), gone after the test."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = _free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_end_user_limits_and_blocks_hold_across_uvicorn_workers(built, redis_url, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", "KNOWLEDGE_DATA_DIR": str(built),
           "KNOWLEDGE_REGISTRY_URL": registry_url_of(built), "KNOWLEDGE_API_KEYS": keys_env(),
           "KNOWLEDGE_RATE_LIMIT_STORAGE": redis_url, "KNOWLEDGE_RATE_LIMIT_PER_MINUTE": "10",
           "KNOWLEDGE_RATE_LIMIT_BLOCK_AFTER": "2", "KNOWLEDGE_RATE_LIMIT_BLOCK_SECONDS": "300",
           "KNOWLEDGE_VECTOR_BACKEND": "local"}
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "knowledge_plane.service.main:app", "--host",
                                "127.0.0.1", "--port", str(port), "--workers", "3", "--no-proxy-headers"],
                               env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/knowledge/caller-apps"  # behind the same limits, and needs no model

    def get(name: str) -> httpx.Response:
        # a new connection each time, so that the requests spread over the workers
        with httpx.Client(timeout=30) as http:
            return http.get(url, headers={**headers("chatbot_prod"), **user(name)})

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/knowledge/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "uvicorn.log").read_text()
                time.sleep(0.2)
        with ThreadPoolExecutor(4) as pool:  # concurrent, so that every worker takes some
            codes = sorted(r.status_code for r in pool.map(get, ["customer-1"] * 14))
        assert codes == [200] * 10 + [429] * 4
        blocked = get("customer-1")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 60  # blocked in every worker
        assert get("customer-2").status_code == 200
    finally:
        process.terminate()
        process.wait(30)
        log.close()
