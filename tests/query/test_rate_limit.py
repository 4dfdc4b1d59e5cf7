"""10 requests a minute per key, and per client address for failed authentication → 429 + Retry-After."""

from __future__ import annotations

from query_service.ratelimit import RateLimiter
from tests.query.support import headers


def ask(client, actor):
    return client.post("/knowledge/query", json={"question": "garantie"}, headers=headers(actor))


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
        assert client.post("/knowledge/query", json={"question": "garantie"},
                           headers={"X-API-Key": "guess-00000000000000"}).status_code == 401
    response = client.post("/knowledge/query", json={"question": "garantie"}, headers={"X-API-Key": "guess-2"})
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


def test_the_window_slides():
    now = [1000.0]
    limiter = RateLimiter(3, 60, clock=lambda: now[0])
    assert [limiter.hit("k") for _ in range(3)] == [0, 0, 0]
    assert limiter.hit("k") == 60
    now[0] += 30
    assert limiter.hit("k") == 30
    now[0] += 30.5
    assert limiter.hit("k") == 0
    assert limiter.hit("other") == 0


def test_retry_after_does_not_count():
    limiter = RateLimiter(1, 60, clock=lambda: 0.0)
    assert limiter.retry_after("k") == 0 and limiter.retry_after("k") == 0
    limiter.record("k")
    assert limiter.retry_after("k") == 60
