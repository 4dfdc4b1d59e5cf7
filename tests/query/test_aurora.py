"""The Aurora Nexus contract: its documented payload on POST /api/query, answered in its shape, with
a bearer JWT verified against a JWKS served on loopback (keys generated here), or an API key as a
bearer token; thread_id in the query log; GET /api/caller-apps public and active apps only."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from knowledge_plane.storage.registry import Registry, query_log_entries, set_caller_app
from tests.query.support import registry_url_of, state, synthetic_version
from tests.query.test_permissions import AURORA_KEYS, NOTES, QUESTION, keys

ISSUER, AUDIENCE = "https://login.aurora.test/", "knowledge-plane"
PAYLOAD = {"query": QUESTION, "source_app": "notes", "workspace": "garage", "caller_app": "aurora_nexus_ui",
           "thread_id": "thread-42", "tenant_id": "default", "pack_id": "notes", "language": "fr"}


JWKS_FETCHES: list[float] = []  # each GET of the loopback JWKS


class Keys:
    """An RSA key pair whose public half a loopback JWKS endpoint serves."""

    def __init__(self, kid: str):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())), "kid": self.kid,
                "use": "sig", "alg": "RS256"}

    def token(self, **claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "azp": "aurora-notes", "iat": now,
                "exp": now + 300, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.private, "RS256",
                          headers={"kid": self.kid})


@pytest.fixture(scope="module")
def signer() -> Keys:
    return Keys("k1")


@pytest.fixture(scope="module")
def jwks_url(signer):
    document = json.dumps({"keys": [signer.jwk()]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            JWKS_FETCHES.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture
def make_aurora(make_client, new_data_dir, build_embedder, jwks_url, tmp_path: Path):
    """make_aurora(**service_settings) → a client over the notes, verifying JWTs against the JWKS."""
    data = new_data_dir(tmp_path / "aurora")
    registry = Registry(registry_url_of(data), "default")
    texts = [text for text, _ in NOTES]
    synthetic_version(registry, data, "knowledge:uploads", texts, tag="aur001", vectors=build_embedder.encode(texts),
                      rows=[fields for _, fields in NOTES])
    return lambda **overrides: make_client(
        data, **{"api_keys": keys(), "jwt_jwks_url": jwks_url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE,
                 "jwt_actors": "aurora-notes=aurora_notes,aurora-ui=aurora_nexus_ui", **overrides})


@pytest.fixture
def aurora(make_aurora):
    return make_aurora()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_documented_payload_with_a_jwt_gets_an_answer_in_aurora_terms(aurora, signer):
    response = aurora.post("/api/query", json={k: v for k, v in PAYLOAD.items() if v is not None},
                           headers=bearer(signer.token()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] in ("success", "low_confidence") and body["thread_id"] == "thread-42"
    assert [(r["document_id"], r["pack_id"], r["source_app"], r["language"]) for r in body["results"]] == [
        ("note.clio", "notes", "notes", "fr")]
    assert body["results"][0]["content"].startswith("Couple de serrage")
    state(aurora).query_log.flush()
    entry = next(e for e in query_log_entries(state(aurora).registry, 5) if e["request_id"] == body["request_id"])
    assert entry["thread_id"] == "thread-42" and entry["actor"] == "aurora_notes"


def test_the_token_maps_to_an_actor_fixed_in_code(aurora, signer):
    # The notes app's token reads only its pack and application, whatever the payload asks for.
    wide = {"query": QUESTION, "pack_ids": ["notes"], "source_app": ["notes", "wiki", "git"], "top_k": 10}
    notes = aurora.post("/api/query", json=wide, headers=bearer(signer.token())).json()
    assert {r["document_id"] for r in notes["results"]} == {"note.clio"}
    ui = aurora.post("/api/query", json=wide, headers=bearer(signer.token(azp="aurora-ui"))).json()
    assert {r["document_id"] for r in ui["results"]} == {"note.clio", "wiki.208.fr"}


def test_language_puts_its_passages_first_or_keeps_only_them(aurora, signer):
    ui = bearer(signer.token(azp="aurora-ui"))
    ask = {"query": "couple de serrage roues Peugeot 208", "source_app": "wiki", "top_k": 10}

    def languages(**extra) -> list[str]:
        return [r["language"] for r in aurora.post("/api/query", json={**ask, **extra}, headers=ui).json()["results"]]

    assert languages() == ["fr", "en"]  # the French passage ranks first on its own
    assert languages(language="en") == ["en", "fr"]
    assert languages(language="en", language_only=True) == ["en"]
    # before top_k, not after: the one passage asked for is the English one although the French ranks first
    assert languages(language="en", top_k=1) == ["en"]


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 10}, {"aud": "someone-else"}, {"iss": "https://evil.test/"}, {"sub": None},
    {"azp": "unmapped-app"}, {"azp": None},
])
def test_bad_tokens_are_401(aurora, signer, claims):
    response = aurora.post("/api/query", json={"query": QUESTION}, headers=bearer(signer.token(**claims)))
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_signed_by_another_key_or_unsigned_is_401(aurora):
    forged = Keys("k1").token()  # same kid, another key
    assert aurora.post("/api/query", json={"query": QUESTION}, headers=bearer(forged)).status_code == 401
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "azp": "aurora-ui",
                           "exp": int(time.time()) + 60}, None, "none")
    assert aurora.post("/api/query", json={"query": QUESTION}, headers=bearer(unsigned)).status_code == 401


def test_an_api_key_as_a_bearer_token(aurora):
    response = aurora.post("/api/query", json={"query": QUESTION}, headers=bearer(AURORA_KEYS["aurora_nexus_ui"]))
    assert response.status_code == 200
    assert aurora.post("/api/query", json={"query": QUESTION}, headers=bearer("x" * 20)).status_code == 401


def test_the_rate_limit_counts_per_token_subject(make_aurora, signer):
    client = make_aurora(rate_limit_per_minute=2)
    codes = [client.post("/api/query", json={"query": QUESTION}, headers=bearer(signer.token(sub="a"))).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    # another subject of the same application has its own budget, and X-End-User-ID cannot fake one
    assert client.post("/api/query", json={"query": QUESTION}, headers=bearer(signer.token(sub="b"))).status_code == 200
    faked = {**bearer(signer.token(sub="a")), "X-End-User-ID": "someone-new"}
    assert client.post("/api/query", json={"query": QUESTION}, headers=faked).status_code == 429


def test_workspace_filters_before_ranking(aurora, signer):
    ui = signer.token(azp="aurora-ui")
    ask = {"query": QUESTION, "source_app": ["notes", "wiki"], "top_k": 10}
    garage = aurora.post("/api/query", json={**ask, "workspace": "garage"}, headers=bearer(ui)).json()
    assert [r["document_id"] for r in garage["results"]] == ["note.clio"]
    assert aurora.post("/api/query", json={**ask, "workspace": "nowhere"}, headers=bearer(ui)).json()["results"] == []
    assert aurora.post("/api/query", json={"query": QUESTION, "workspace": "garage"},
                       headers=bearer(ui)).status_code == 422  # a workspace belongs to an application


def test_caller_apps_is_public_and_lists_active_apps_only(aurora):
    set_caller_app(state(aurora).registry, "retired_app", active=False)
    response = aurora.get("/api/caller-apps")
    assert response.status_code == 200
    names = [a["name"] for a in response.json()["caller_apps"]]
    assert "aurora_nexus_ui" in names and "retired_app" not in names


def test_forged_tokens_do_not_make_the_service_fetch_the_jwks_for_each(make_aurora, signer):
    """An unknown kid refetches the key set at most once a minute: a flood of forged tokens costs one
    fetch, not one outbound request (and a thread) each; a genuine token still authenticates."""
    client = make_aurora()
    assert client.post("/api/query", json=PAYLOAD, headers=bearer(signer.token())).status_code == 200
    before = len(JWKS_FETCHES)
    forger = Keys("forged")
    for _ in range(5):
        response = client.post("/api/query", json=PAYLOAD, headers=bearer(forger.token()))
        assert response.status_code == 401, response.text
    assert len(JWKS_FETCHES) - before <= 1
    assert client.post("/api/query", json=PAYLOAD, headers=bearer(signer.token())).status_code == 200
