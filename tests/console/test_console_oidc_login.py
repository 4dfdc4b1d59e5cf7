"""Browser sign-in through an OpenID Connect provider (authorization code with PKCE) against a
loopback provider the test serves: it checks the S256 challenge against the verifier, and the
console checks the state, the ID token's nonce and audience, and takes the role from the access token."""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from knowledge_plane.console.app import create_app
from knowledge_plane.console.config import ConsoleSettings, OidcSettings
from knowledge_plane.settings import Settings
from tests.console.conftest import CHROMEDRIVER, CHROMIUM, SECRET, TENANT, audit_actions, csrf_of

CLIENT_ID, AUDIENCE = "governance-console", "knowledge-api"


@dataclass
class Provider:
    """What the loopback provider issues and what it saw."""

    url: str
    key: rsa.RSAPrivateKey
    roles: list[str] = field(default_factory=lambda: ["reviewer"])
    deny: bool = False
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def sign(self, **claims) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.url, "sub": "u-42", "iat": now, "exp": now + 300, **claims}, self.key,
                          algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def provider() -> Iterator[Provider]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict | None = None, location: str | None = None) -> None:
            self.send_response(status)
            if location:
                self.send_header("location", location)
            payload = json.dumps(body or {}).encode()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/.well-known/openid-configuration":
                return self._send(200, {"issuer": idp.url, "authorization_endpoint": f"{idp.url}/authorize",
                                        "token_endpoint": f"{idp.url}/token", "jwks_uri": f"{idp.url}/certs"})
            if url.path == "/certs":
                return self._send(200, {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
            if url.path == "/authorize":  # a provider whose user has already consented
                assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
                assert query["code_challenge_method"] == "S256" and "openid" in query["scope"].split()
                back = {"state": query["state"]}
                if idp.deny:
                    back["error"] = "access_denied"
                else:
                    back["code"] = secrets.token_urlsafe(16)
                    idp.codes[back["code"]] = query
                return self._send(302, location=f"{query['redirect_uri']}?{urllib.parse.urlencode(back)}")
            return self._send(404)

        def do_POST(self):  # noqa: N802
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["content-length"])).decode()))
            idp.token_requests.append(form)
            asked = idp.codes.pop(form.get("code", ""), None)  # a code is good once
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if asked is None or challenge != asked["code_challenge"] or form.get("redirect_uri") != \
                    asked["redirect_uri"] or form.get("client_id") != CLIENT_ID:
                return self._send(400, {"error": "invalid_grant"})
            return self._send(200, {
                "token_type": "Bearer", "expires_in": 300,
                "access_token": idp.sign(aud=AUDIENCE, preferred_username="olga", roles=idp.roles),
                "id_token": idp.sign(aud=CLIENT_ID, nonce=asked["nonce"])})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    idp = Provider(f"http://127.0.0.1:{server.server_port}", key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield idp
    server.shutdown()


@pytest.fixture
def client(seeded, provider) -> TestClient:
    oidc = OidcSettings(f"{provider.url}/certs", provider.url, AUDIENCE, client_id=CLIENT_ID)
    return TestClient(create_app(seeded.settings, ConsoleSettings(secret=SECRET, oidc=oidc)), follow_redirects=False)


def to_provider_and_back(client: TestClient) -> str:
    """The browser's trip: the console's redirect to the provider, and the provider's back (a URL)."""
    start = client.get("/login/oidc")
    assert start.status_code == 303 and start.headers["location"].startswith(client.app.state.browser_sign_in
                                                                              .oidc.issuer + "/authorize?")
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    return back.headers["location"]


def test_sign_in_through_the_provider_with_pkce_then_act_with_its_role(client, provider, seeded):
    assert 'id="oidc-sign-in"' in client.get("/login").text
    callback = to_provider_and_back(client)
    assert callback.startswith("http://testserver/login/oidc/callback?") and "code=" in callback
    signed_in = client.get(callback)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/queue"
    queue = client.get("/queue")
    assert queue.status_code == 200 and "signed in as olga (reviewer) through the identity provider" in queue.text
    (request,) = provider.token_requests
    assert request["grant_type"] == "authorization_code" and len(request["code_verifier"]) >= 43
    approved = client.post("/queue/decide", data={"action": "approve", "ids": [seeded.ids["retour"]],
                                                  "csrf_token": csrf_of(queue.text)})
    assert approved.status_code == 303
    assert ("approved", "oidc:olga") in audit_actions(seeded.store)
    # the callback is good once: replayed, it finds no sign-in under way
    replay = client.get(callback)
    assert replay.status_code == 401 and "state does not match" in replay.text


def test_a_viewer_from_the_provider_cannot_approve(client, provider, seeded):
    provider.roles = ["viewer"]
    client.get(to_provider_and_back(client))
    queue = client.get("/queue")
    refused = client.post("/queue/decide", data={"action": "approve", "ids": [seeded.ids["retour"]],
                                                 "csrf_token": csrf_of(queue.text)})
    assert refused.status_code == 403 and "olga is signed in as viewer" in refused.text
    assert seeded.store.get_facts(TENANT, [seeded.ids["retour"]])[0].status == "proposed"


def test_a_callback_meant_for_another_browser_or_refused_signs_nobody_in(client, provider, seeded):
    victim = TestClient(client.app, follow_redirects=False)
    victim.get("/login/oidc")  # the victim's own sign-in is under way, with its own state
    planted = victim.get(to_provider_and_back(client))  # an attacker's callback URL, opened by the victim
    assert planted.status_code == 401 and "state does not match" in planted.text
    assert victim.get("/queue").status_code == 303  # still signed out
    forged = urllib.parse.urlsplit(to_provider_and_back(client))
    query = dict(urllib.parse.parse_qsl(forged.query)) | {"code": "made-up"}
    made_up = client.get(f"{forged.path}?{urllib.parse.urlencode(query)}")
    assert made_up.status_code == 401 and "could not be exchanged" in made_up.text and "invalid_grant" in made_up.text
    provider.deny = True
    denied = client.get(to_provider_and_back(client))
    assert denied.status_code == 401 and "refused the sign-in: access_denied" in denied.text
    provider.deny, provider.roles = False, ["superuser"]
    no_role = client.get(to_provider_and_back(client))
    assert no_role.status_code == 401 and "grants none of the console's roles" in html.unescape(no_role.text)
    assert client.get("/queue").status_code == 303


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="real-browser tests need Debian's chromium and chromium-driver")
def test_chromium_signs_in_through_the_provider(provider, seeded, driver):
    """The same trip in Debian's chromium: the console on a loopback port, the provider on another."""
    from selenium.webdriver.common.by import By

    from tests.console.test_console_browser import serve
    oidc = OidcSettings(f"{provider.url}/certs", provider.url, AUDIENCE, client_id=CLIENT_ID)
    with serve(create_app(seeded.settings, ConsoleSettings(secret=SECRET, oidc=oidc))) as live:
        driver.get(f"{live}/queue")
        driver.find_element(By.ID, "oidc-sign-in").click()
        assert "olga" in driver.find_element(By.ID, "whoami").text
        assert driver.current_url == f"{live}/queue"
    (asked,) = [request for request in provider.token_requests]
    assert asked["redirect_uri"] == f"{live}/login/oidc/callback"


def test_a_provider_out_of_reach_is_a_clear_error(seeded):
    from tests.facts.servers import free_port

    gone = f"http://127.0.0.1:{free_port()}"
    oidc = OidcSettings(f"{gone}/certs", gone, AUDIENCE, client_id=CLIENT_ID)
    client = TestClient(create_app(seeded.settings, ConsoleSettings(secret=SECRET, oidc=oidc)), follow_redirects=False)
    response = client.get("/login/oidc")
    assert response.status_code == 502 and "discovery document could not be read" in response.text


def test_without_a_client_id_there_is_no_browser_flow(app):
    plain = TestClient(app, follow_redirects=False)
    assert 'id="oidc-sign-in"' not in plain.get("/login").text
    assert plain.get("/login/oidc").status_code == 404
    with pytest.raises(ValueError, match="needs the provider too"):
        ConsoleSettings.of(Settings(console={"oidc_client_id": "x", "secret": SECRET}).console)
