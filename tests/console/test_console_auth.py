"""Sign-in, roles, sessions, CSRF and bearer tokens: nobody sees or changes anything without the right role."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from knowledge_plane.console import api, pages
from knowledge_plane.console.app import create_app
from knowledge_plane.console.auth import SESSION_COOKIE, parse_accounts
from knowledge_plane.console.config import ConsoleSettings, OidcSettings
from tests.console.conftest import SECRET, TENANT, audit_actions, csrf_of

ISSUER, AUDIENCE = "https://idp.example.test/realms/kp", "governance-console"


def _routes() -> list[tuple[str, str]]:
    """Every page and API route except the sign-in form, with a sample path."""
    out = []
    for route in [*pages.router.routes, *api.router.routes]:
        path = getattr(route, "path", "")
        if path in ("/login", "/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json") \
                or path.startswith(("/static", "/login/oidc")):
            continue
        for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
            sample = path.replace("{fact_id}", "x" * 8).replace("{relation_id}", "r").replace("{type_name}", "T") \
                .replace("{pack_id}", "p1").replace("{name}", "app").replace("{decision}", "approve") \
                .replace("{state}", "enable")
            out.append((method, sample))
    return out


def test_an_anonymous_request_sees_nothing(app, seeded):
    client = TestClient(app, follow_redirects=False)
    routes = _routes()
    assert len(routes) > 30
    for method, path in routes:
        response = client.request(method, path)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert "sign in" in response.json()["detail"]
        else:
            assert response.status_code == 303 and response.headers["location"] == "/login", (method, path)
        assert "99.7" not in response.text and "99,7" not in response.text
    assert client.get("/login").status_code == 200


def test_a_viewer_reads_but_cannot_approve(browser, seeded):
    vera = browser("vera")
    assert vera.client.get("/queue").status_code == 200
    refused = vera.post("/queue/decide", {"action": "approve", "ids": [seeded.ids["retour"]]})
    assert refused.status_code == 403
    assert "signed in as viewer: this needs the reviewer role" in refused.text
    api = vera.client.post("/api/v1/facts/approve", json={"ids": [seeded.ids["retour"]]},
                           headers={"X-CSRF-Token": vera.csrf()})
    assert api.status_code == 403
    assert vera.client.get("/admin").status_code == 403
    assert seeded.store.get_facts(TENANT, [seeded.ids["retour"]])[0].status == "proposed"
    assert not [a for a in audit_actions(seeded.store) if a[0] == "approved"]


def test_a_reviewer_cannot_administer(browser):
    rita = browser("rita")
    assert rita.post("/admin/rollback", {"namespace": "knowledge:facts-test"}).status_code == 403
    assert rita.client.get("/api/v1/packs").status_code == 403


def test_wrong_password_and_unknown_name_are_refused_alike(app):
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/login").text)
    for name, password in (("rita", "nope"), ("nobody", "reviewer-pass")):
        response = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
        assert response.status_code == 401 and "unknown name or wrong password" in response.text
    assert client.get("/queue").status_code == 303


def test_session_cookie_is_httponly_samesite_and_signed(app, browser):
    rita = browser("rita")
    cookie = next(c for c in rita.client.cookies.jar if c.name == SESSION_COOKIE)
    response = TestClient(app).get("/login")
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=strict" in response.headers["set-cookie"].lower()
    forged = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie.value[:-4] + "AAAA"})
    assert forged.get("/queue").status_code == 303  # a tampered cookie is no session


def test_forged_csrf_token_changes_nothing(browser, seeded):
    rita = browser("rita")
    fact = seeded.ids["retour"]
    for token in ("forged", ""):
        response = rita.client.post("/queue/decide", data={"action": "approve", "ids": [fact], "csrf_token": token})
        assert response.status_code == 403 and "CSRF token" in response.text
    api = rita.client.post("/api/v1/facts/approve", json={"ids": [fact]})  # cookie session, no X-CSRF-Token
    assert api.status_code == 403
    assert seeded.store.get_facts(TENANT, [fact])[0].status == "proposed"


def test_a_removed_account_loses_its_session(browser, seeded):
    rita = browser("rita")
    assert rita.client.get("/queue").status_code == 200
    lines = [line for line in seeded.accounts_file.read_text().splitlines() if not line.startswith("rita:")]
    seeded.accounts_file.write_text("\n".join(lines) + "\n")
    assert rita.client.get("/queue").status_code == 303


@pytest.mark.parametrize("line, message", [
    ("rita:superuser:$argon2id$v=19$x", "unknown role 'superuser'"),
    ("rita:reviewer:plaintext", "expected name:role:$argon2id$"),
])
def test_accounts_file_errors_name_the_line(line, message):
    with pytest.raises(ValueError, match="line 2: " + message.replace("$", r"\$")):
        parse_accounts("# comment\n" + line)


def test_console_refuses_to_start_with_nobody_able_to_sign_in():
    with pytest.raises(ValueError, match="nobody could sign in"):
        ConsoleSettings(secret=SECRET).validate()


# -- OIDC bearer tokens ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idp() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    """A signing key the test generated and a local HTTP endpoint serving its JWKS."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_port}/certs"
    server.shutdown()


def token(key, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-123", "preferred_username": "olga", "roles": ["reviewer"],
               "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def oidc_client(seeded, idp):
    _, jwks_url = idp
    app = create_app(seeded.settings, ConsoleSettings(secret=SECRET, oidc=OidcSettings(jwks_url, ISSUER, AUDIENCE)))
    return TestClient(app, follow_redirects=False)


def test_a_valid_bearer_token_acts_with_its_role_and_is_audited_by_name(oidc_client, idp, seeded):
    key, _ = idp
    headers = {"Authorization": f"Bearer {token(key)}"}
    assert oidc_client.get("/api/v1/facts", headers=headers).json()["total"] >= 3
    response = oidc_client.post("/api/v1/facts/approve", json={"ids": [seeded.ids["retour"]]}, headers=headers)
    assert response.status_code == 200 and response.json()["approved"] == [seeded.ids["retour"]]
    assert ("approved", "oidc:olga") in audit_actions(seeded.store)
    viewer = {"Authorization": f"Bearer {token(key, roles=['viewer'])}"}
    assert oidc_client.post("/api/v1/facts/reject", json={"ids": [seeded.ids["a"]], "reason": "x"},
                            headers=viewer).status_code == 403


@pytest.mark.parametrize("claims, message", [
    ({"iss": "https://evil.example"}, "Invalid issuer"),
    ({"aud": "another-app"}, "Audience doesn't match"),
    ({"exp": int(time.time()) - 60}, "expired"),
    ({"roles": ["superuser"]}, "grants none of the console's roles"),
])
def test_bad_bearer_tokens_are_401_with_the_reason(oidc_client, idp, claims, message):
    key, _ = idp
    response = oidc_client.get("/api/v1/facts", headers={"Authorization": f"Bearer {token(key, **claims)}"})
    assert response.status_code == 401
    assert message in response.json()["detail"]


def test_a_token_signed_by_another_key_is_refused(oidc_client):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = oidc_client.get("/api/v1/facts", headers={"Authorization": f"Bearer {token(other)}"})
    assert response.status_code == 401 and "Signature verification failed" in response.json()["detail"]


def test_cli_hashes_a_password_and_refuses_to_start_without_accounts(capsys, monkeypatch):
    import io

    from argon2 import PasswordHasher

    from knowledge_plane.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["console", "--hash-password", "--json"]) == 0
    hashed = json.loads(capsys.readouterr().out)["hash"]
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, "s3cret")
    parse_accounts(f"rita:reviewer:{hashed}")  # the line the README's tour tells people to write
    monkeypatch.delenv("KNOWLEDGE_CONSOLE_ACCOUNTS", raising=False)
    monkeypatch.delenv("KNOWLEDGE_CONSOLE_OIDC_JWKS_URL", raising=False)
    assert main(["console", "--port", "0"]) == 1
    assert "nobody could sign in" in capsys.readouterr().err


def test_openapi_documents_the_api_and_its_bearer_scheme(app):
    spec = TestClient(app).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"/api/v1/facts", "/api/v1/facts/approve", "/api/v1/conflicts", "/api/v1/indexes/rollback",
            "/api/v1/packs", "/api/v1/caller-apps", "/api/v1/insight"} <= set(spec["paths"])
    assert not [p for p in spec["paths"] if not p.startswith("/api/v1/")]  # pages stay out of the API
