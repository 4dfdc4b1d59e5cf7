"""Failed sign-ins are limited per account name and per client address: a clear 429 page with
Retry-After, the right password refused too while locked, other names and addresses unaffected."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi.testclient import TestClient

from knowledge_plane.console.app import create_app
from knowledge_plane.console.config import ConsoleSettings
from knowledge_plane.settings import Settings
from tests.console.conftest import PASSWORDS, SECRET, csrf_of


@pytest.fixture
def limited_app(seeded):
    return create_app(seeded.settings, ConsoleSettings(
        secret=SECRET, accounts_file=seeded.accounts_file, signin_failures_per_account=3,
        signin_failures_per_address=5, signin_window_seconds=600,
        trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),)))


def sign_in(app, name: str, password: str, address: str = "192.0.2.1", forwarded: str | None = None):
    client = TestClient(app, follow_redirects=False, client=(address, 40000))
    form = client.get("/login")
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = client.post("/login", data={"username": name, "password": password,
                                           "csrf_token": csrf_of(form.text)}, headers=headers)
    response.signed_in = client.get("/queue").status_code == 200
    return response


def test_an_account_is_locked_after_its_failures_from_any_address(limited_app):
    for n in range(3):
        assert sign_in(limited_app, "rita", "guess", address=f"192.0.2.{10 + n}").status_code == 401
    locked = sign_in(limited_app, "rita", PASSWORDS["rita"], address="192.0.2.99")
    assert locked.status_code == 429 and not locked.signed_in
    assert 0 < int(locked.headers["retry-after"]) <= 600
    assert "too many failed sign-ins for this name or from this address: try again in" in locked.text
    assert 'id="error-message"' in locked.text and 'id="sign-in"' in locked.text  # the form, with the reason
    # another person is not locked out by attempts on rita
    vera = sign_in(limited_app, "vera", PASSWORDS["vera"], address="192.0.2.10")
    assert vera.status_code == 303 and vera.signed_in


def test_an_address_is_locked_after_trying_many_names(limited_app):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert sign_in(limited_app, name, "guess").status_code == 401
    assert sign_in(limited_app, "adam", PASSWORDS["adam"]).status_code == 429
    assert sign_in(limited_app, "adam", PASSWORDS["adam"], address="192.0.2.2").status_code == 303
    # behind a trusted proxy the client is the forwarded address, not the proxy's
    for name in ("b1", "b2", "b3", "b4", "b5"):
        assert sign_in(limited_app, name, "guess", address="10.1.1.1", forwarded="198.51.100.7").status_code == 401
    assert sign_in(limited_app, "adam", PASSWORDS["adam"], address="10.1.1.1",
                   forwarded="198.51.100.7").status_code == 429
    assert sign_in(limited_app, "adam", PASSWORDS["adam"], address="10.1.1.1",
                   forwarded="198.51.100.8").status_code == 303


def test_a_success_clears_the_accounts_count(limited_app):
    for _ in range(2):
        assert sign_in(limited_app, "rita", "guess", address="192.0.2.50").status_code == 401
    assert sign_in(limited_app, "rita", PASSWORDS["rita"], address="192.0.2.51").status_code == 303
    for _ in range(2):  # two more failures stay under the account's 3 once the success cleared the first two
        assert sign_in(limited_app, "rita", "guess", address="192.0.2.52").status_code == 401
    assert sign_in(limited_app, "rita", PASSWORDS["rita"], address="192.0.2.53").status_code == 303


def test_the_limits_come_from_the_settings(tmp_path, seeded):
    settings = Settings(paths={"data_dir": tmp_path}, console={
        "accounts": seeded.accounts_file, "secret": SECRET, "signin_failures_per_account": 1},
        service={"trusted_proxies": "10.0.0.0/8"})
    app = create_app(settings)
    assert sign_in(app, "rita", "guess").status_code == 401
    assert sign_in(app, "rita", PASSWORDS["rita"], address="192.0.2.77").status_code == 429
    assert sign_in(app, "vera", PASSWORDS["vera"], address="10.0.0.5", forwarded="198.51.100.1").status_code == 303


def test_parallel_guesses_get_no_more_tries_than_the_limit(limited_app):
    """The sign-in route runs in a thread pool: ten guesses at once must not all pass the limit's test
    before the first failure is counted (each password check takes an argon2 verification)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda n: sign_in(limited_app, "rita", f"guess-{n}", address=f"192.0.2.{50 + n}")
                              .status_code, range(10)))
    assert sorted(codes) == [401] * 3 + [429] * 7, codes
