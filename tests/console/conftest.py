"""Fixtures of the console tests: a real registry and SQL fact store (SQLite, or the throwaway Postgres
with KNOWLEDGE_TEST_REGISTRY=postgres), seeded with facts, a conflict, index versions, build records
and a query log, and the console app over them with one account per role."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from knowledge_plane.build.records import ChunksRecord, ParsedRecord
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.console.app import create_app
from knowledge_plane.console.auth import hash_password
from knowledge_plane.console.config import ConsoleSettings
from knowledge_plane.facts import review
from knowledge_plane.facts.sql_store import SqlFactStore
from knowledge_plane.settings import Settings
from knowledge_plane.storage.index_store import write_version
from knowledge_plane.storage.registry import Registry, append_query_log
from tests.facts.support import NAMESPACE, make_fact

TENANT, OTHER_TENANT = "acme", "globex"
PASSWORDS = {"vera": "viewer-pass", "rita": "reviewer-pass", "adam": "admin-pass"}
ROLES = {"vera": "viewer", "rita": "reviewer", "adam": "admin"}
XSS = '<script>alert("x")</script>'
SECRET = "s" * 40
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or \
    "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def accounts_text() -> str:
    return "# name:role:hash\n" + "".join(f"{n}:{ROLES[n]}:{hash_password(p)}\n" for n, p in PASSWORDS.items())


@dataclass
class Seeded:
    settings: Settings
    store: SqlFactStore
    ids: dict[str, str]
    accounts_file: Path


def seed_versions(registry: Registry, namespace: str, versions: list[str], root: Path) -> None:
    """Real, servable version files (a rollback verifies its target), three unit vectors each."""
    vectors = np.eye(3, 384, dtype=np.float32)
    for version in versions:
        manifest = {"namespace": namespace, "version": version, "fingerprint": version, "dimension": 384,
                    "counts": {"chunks": 3, "documents": 1}, "checks": [], "checks_passed": True}
        payloads = [{"chunk_id": f"{version}-{i}", "doc_id": "contrat-a", "text": f"passage {i}"} for i in range(3)]
        path = write_version(root / version, manifest, vectors, payloads)
        registry.add_version(namespace, version, path, manifest)
        registry.promote(namespace, version)


@pytest.fixture
def seeded(tmp_path: Path, registry_url: str, accounts_text: str, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    monkeypatch.delenv("KNOWLEDGE_VECTOR_BACKEND", raising=False)  # the rollback moves registry aliases only
    monkeypatch.delenv("KNOWLEDGE_FACT_STORE", raising=False)
    settings = Settings(paths={"data_dir": tmp_path / "data"}, registry={"url": registry_url}, tenant_id=TENANT)
    store = SqlFactStore(registry_url)
    facts = {"a": make_fact(TENANT, 99.7, "%", doc="contrat-a"), "b": make_fact(TENANT, 99.5, "%", doc="contrat-b"),
             "retour": make_fact(TENANT, 30, "jours", subject="retour", predicate="délai de retour", doc="politique",
                                 fact_type="DURATION"),
             "xss": make_fact(TENANT, XSS, None, subject="note", predicate="remarque", doc="xss-doc",
                              fact_type="TEXT")}
    facts["a"].source_chunk_id = "chunk-a"
    store.upsert_facts(TENANT, list(facts.values()))
    review.detect_and_store(store, TENANT, list(facts.values()))
    foreign = make_fact(OTHER_TENANT, 10, "jours", subject="retour", predicate="délai de retour", doc="autre")
    store.upsert_facts(OTHER_TENANT, [foreign])
    ids = {k: f.id for k, f in facts.items()} | {"foreign": foreign.id}

    ctx = BuildContext(settings, run_id="run-1")
    ctx.stages.write(ChunksRecord(namespace=NAMESPACE, chunks=[
        {"chunk_id": "chunk-a", "doc_id": "contrat-a", "doc_version": "v1", "title": f"Contrat {XSS}",
         "source_path": "contrat-a.md", "location": "§2", "text": "Le service garantit une disponibilité de 99,7 % "
         "(SLA) mesurée chaque mois."}]))
    ctx.stages.write(ParsedRecord(namespace=NAMESPACE, documents=[{"doc_id": "contrat-a"}], quarantined=[
        {"path": "secrets.md", "reason": "secret-detected", "detail": "AWS access key on line 3", "stage": "raw"}]))
    registry = Registry(registry_url, TENANT)
    seed_versions(registry, NAMESPACE, ["v2024-01-01", "v2024-02-01", "v2024-03-01"], settings.paths.indexes_dir)
    now = dt.datetime.now(dt.UTC)
    append_query_log(registry, [
        {"at": now - dt.timedelta(hours=i), "request_id": f"r{i}", "actor": "chatbot_prod",
         "caller_app": "aurora_nexus_ui" if i % 2 else "unknown", "question_sha256": f"{i % 3:016x}",
         "status": ["success", "success", "needs_clarification", "refused"][i % 4], "passage_ids": [],
         "index_versions": {NAMESPACE: "v2024-03-01"}, "latency_ms": 10.0 * (i + 1), "flags": []}
        for i in range(20)])
    accounts = tmp_path / "accounts"
    accounts.write_text(accounts_text, encoding="utf-8")
    yield Seeded(settings, store, ids, accounts)
    store.close()


@pytest.fixture
def app(seeded: Seeded):
    return create_app(seeded.settings, ConsoleSettings(secret=SECRET, accounts_file=seeded.accounts_file,
                                                        max_body_bytes=16 * 1024))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Browser:
    """A TestClient that signs in through the form, as a browser does, and posts forms with the CSRF token."""

    def __init__(self, app):
        self.client = TestClient(app, follow_redirects=False)

    def sign_in(self, name: str) -> Browser:
        page = self.client.get("/login")
        response = self.client.post("/login", data={"username": name, "password": PASSWORDS[name],
                                                    "csrf_token": csrf_of(page.text)})
        assert response.status_code == 303, response.text
        return self

    def csrf(self) -> str:
        return csrf_of(self.client.get("/login").text)

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf()}, **kwargs)


@pytest.fixture
def browser(app):
    def make(name: str | None = None) -> Browser:
        b = Browser(app)
        return b.sign_in(name) if name else b

    return make


def audit_actions(store: SqlFactStore) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in store.audit_log(TENANT)]


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch):
    """Debian's chromium, headless, through chromium-driver (the browser tests skip without them)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.implicitly_wait(5)
    yield browser
    browser.quit()
