"""The query log's retention and erasure: the retention privilege deletes exactly what it is asked to,
and every other connection still finds the log append-only (SQLite, and Postgres with
KNOWLEDGE_TEST_REGISTRY=postgres, where the service's role and the retention login are real roles)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from knowledge_plane.cli.main import main
from knowledge_plane.serving.query_engine import question_hash
from knowledge_plane.storage.registry import Registry, append_query_log, query_log
from knowledge_plane.storage.retention import ROLE, end_user_hash, erase_query_log, purge_query_log

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def entry(request_id: str, days_old: float, question: str = "q") -> dict:
    return {"request_id": request_id, "actor": "chatbot_prod", "caller_app": "unknown", "status": "success",
            "question_sha256": question_hash(question), "latency_ms": 1.0, "at": NOW - dt.timedelta(days=days_old)}


def request_ids(registry: Registry) -> set[tuple[str, str]]:
    with registry.engine.connect() as db:
        rows = db.execute(sa.select(query_log.c.tenant_id, query_log.c.request_id))
        return {(r.tenant_id, r.request_id) for r in rows}


@pytest.fixture
def logged(registry_url):
    registry = Registry(registry_url, "default")
    append_query_log(registry, [entry("old", 91), entry("edge", 89.9), entry("new", 1), entry("asked", 2, "secret")])
    append_query_log(Registry(registry_url, "other"), [entry("theirs", 200)])
    return registry


def test_purge_deletes_the_tenants_rows_older_than_the_retention_and_nothing_else(logged, registry_url):
    assert purge_query_log(registry_url, "default", 90, now=NOW) == 1
    assert request_ids(logged) == {("default", "edge"), ("default", "new"), ("default", "asked"), ("other", "theirs")}
    assert purge_query_log(registry_url, "default", 90, now=NOW) == 0
    with pytest.raises(ValueError, match="1 or more"):
        purge_query_log(registry_url, "default", 0)


def test_erasure_by_question_or_request_id_whatever_its_age(logged, registry_url):
    append_query_log(logged, [{**entry("alice", 400), "end_user_hash": end_user_hash("k", "42")}])
    assert erase_query_log(registry_url, "default", end_user_sha=end_user_hash("other-key", "42")) == 0
    assert erase_query_log(registry_url, "default", end_user_sha=end_user_hash("k", "42")) == 1
    with pytest.raises(ValueError, match="one of them"):
        erase_query_log(registry_url, "default", request_id="new", end_user_sha=end_user_hash("k", "42"))
    assert erase_query_log(registry_url, "default", question_sha256=question_hash("secret")) == 1
    assert erase_query_log(registry_url, "default", request_id="new") == 1
    assert erase_query_log(registry_url, "default", request_id="theirs") == 0, "another tenant's row stays"
    assert request_ids(logged) == {("default", "old"), ("default", "edge"), ("other", "theirs")}


def test_every_other_connection_still_finds_the_log_append_only(logged):
    for statement in (query_log.delete(), query_log.update().values(status="refused")):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), logged.engine.begin() as db:
            db.execute(statement)
    assert len(request_ids(logged)) == 5


def test_the_cli_purges_with_the_setting_and_erases_a_question(logged, registry_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url)
    monkeypatch.setenv("KNOWLEDGE_QUERY_LOG_RETENTION_DAYS", "30")
    assert main(["querylog", "purge", "--json"]) == 0  # "old" (91 days) goes; now is the real now, after NOW
    assert '"deleted": ' in capsys.readouterr().out
    assert ("default", "old") not in request_ids(logged) and ("default", "new") in request_ids(logged)
    assert main(["querylog", "erase", "--question", "secret"]) == 0
    assert "1 query-log rows erased" in capsys.readouterr().out
    assert main(["querylog", "erase"]) == 2


def _login(url: str, role: str) -> str:
    return sa.make_url(url).set(username=role).render_as_string(hide_password=False)


def test_on_postgres_only_members_of_the_retention_role_may_delete(logged, registry_url):
    if not registry_url.startswith("postgresql"):
        pytest.skip("roles are Postgres's")
    suffix = uuid.uuid4().hex[:8]
    service, janitor = f"kp_service_{suffix}", f"kp_retention_{suffix}"
    with logged.engine.begin() as db:
        db.execute(sa.text(f"CREATE ROLE {service} LOGIN"))
        # even a service role granted DELETE by mistake meets the trigger
        db.execute(sa.text(f"GRANT SELECT, INSERT, DELETE ON query_log TO {service}"))
        db.execute(sa.text(f"GRANT USAGE ON SEQUENCE query_log_id_seq TO {service}"))
        db.execute(sa.text(f"CREATE ROLE {janitor} LOGIN IN ROLE {ROLE}"))
    service_url, janitor_url = _login(registry_url, service), _login(registry_url, janitor)
    engine = sa.create_engine(service_url, poolclass=sa.pool.NullPool)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"), engine.begin() as db:
            db.execute(sa.text(f"SET LOCAL ROLE {ROLE}"))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as db:
            db.execute(query_log.delete())
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
            purge_query_log(service_url, "default", 1, now=NOW)
    finally:
        engine.dispose()
    assert purge_query_log(janitor_url, "default", 90, now=NOW) == 1
    assert erase_query_log(janitor_url, "default", request_id="new") == 1
    append_query_log(logged, [{**entry("alice", 1), "end_user_hash": end_user_hash("k", "42")}])
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as db:  # the column changed nothing
        db.execute(query_log.delete().where(query_log.c.request_id == "alice"))
    assert erase_query_log(janitor_url, "default", end_user_sha=end_user_hash("k", "42")) == 1
    assert len(request_ids(logged)) == 3
