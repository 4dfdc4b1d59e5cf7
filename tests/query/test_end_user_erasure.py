"""Erasure per end user: the service logs each query's end user as a keyed hash (never the id), and
``knowledge querylog erase --end-user ID`` deletes that user's rows through the retention privilege
while the service's own connection still finds the log append-only."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from knowledge_plane.cli.main import main
from knowledge_plane.storage.registry import query_log, query_log_entries
from knowledge_plane.storage.retention import end_user_hash
from tests.query.support import headers, registry_url_of, state

KEY = "test-end-user-key-0123456789abcdef"
QUESTION = "Quels moyens de paiement acceptez-vous ?"


def ask(client, end_user: str | None) -> str:
    extra = {"X-End-User-ID": end_user} if end_user else {}
    response = client.post("/knowledge/query", json={"question": QUESTION},
                           headers={**headers("chatbot_prod"), **extra})
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def test_one_end_users_rows_are_erased_and_the_others_stay(make_client, data_copy, monkeypatch, capsys):
    monkeypatch.setenv("KNOWLEDGE_QUERY_LOG_END_USER_KEY", KEY)
    client = make_client(data_copy, peer=("198.51.100.7", 50000))
    alice = {ask(client, "42"), ask(client, "42")}  # a short id: a plain hash of it is reversed at once
    bob = {ask(client, "43")}
    anonymous = {ask(client, None)}  # no X-End-User-ID: the client address is the end user
    state(client).query_log.flush()
    rows = {e["request_id"]: e for e in query_log_entries(state(client).registry, 50)}
    assert {rows[r]["end_user_hash"] for r in alice} == {end_user_hash(KEY, "42")}
    assert rows[next(iter(bob))]["end_user_hash"] == end_user_hash(KEY, "43") != end_user_hash(KEY, "42")
    assert rows[next(iter(anonymous))]["end_user_hash"] == end_user_hash(KEY, "198.51.100.7")
    unkeyed = hashlib.sha256(b"42").hexdigest()
    assert not any(unkeyed[:24] in str(e) or "'42'" in str(e) for e in rows.values()), "only the keyed hash"

    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(data_copy))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(data_copy))
    assert main(["querylog", "erase", "--end-user", "42"]) == 0
    assert "2 query-log rows erased" in capsys.readouterr().out
    left = {e["request_id"] for e in query_log_entries(state(client).registry, 50)}
    assert not alice & left and bob | anonymous <= left
    assert main(["querylog", "erase", "--end-user", "198.51.100.7"]) == 0
    assert "1 query-log rows erased" in capsys.readouterr().out

    # the service's connection still cannot delete (nor update) a row, whoever it belongs to
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), state(client).registry.engine.begin() as db:
        db.execute(query_log.delete().where(query_log.c.request_id.in_(bob)))
    assert bob <= {e["request_id"] for e in query_log_entries(state(client).registry, 50)}


def test_without_a_key_no_end_user_is_logged_and_erasure_says_why(make_client, data_copy, monkeypatch, capsys):
    monkeypatch.delenv("KNOWLEDGE_QUERY_LOG_END_USER_KEY", raising=False)
    client = make_client(data_copy)
    request_id = ask(client, "42")
    state(client).query_log.flush()
    entry = next(e for e in query_log_entries(state(client).registry, 50) if e["request_id"] == request_id)
    assert entry["end_user_hash"] is None
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(data_copy))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(data_copy))
    assert main(["querylog", "erase", "--end-user", "42"]) == 2
    assert "KNOWLEDGE_QUERY_LOG_END_USER_KEY is not set" in capsys.readouterr().err
