"""``knowledge query`` answers in-process with the API's response; ``knowledge serve`` checks its keys first."""

from __future__ import annotations

import json
import re

import pytest

from knowledge_plane.cli.main import main
from tests.query.support import headers, registry_url_of

QUESTION = "Combien de temps ai-je pour retourner une pièce ?"


@pytest.fixture
def cli_env(built, embedder, monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(built))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(built))
    monkeypatch.setattr("knowledge_plane.serving.query_encoder.QueryEncoder", lambda **_: embedder)


def test_json_output_is_the_api_response(cli_env, client, capsys):
    assert main(["query", QUESTION, "--actor", "chatbot_prod", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    api = client.post("/knowledge/query", json={"question": QUESTION}, headers=headers("chatbot_prod")).json()
    assert set(out) == set(api)
    assert out["status"] == api["status"] == "success"
    assert [p["chunk_id"] for p in out["passages"]] == [p["chunk_id"] for p in api["passages"]]
    assert out["index_versions"] == api["index_versions"]


def test_text_output_shows_status_and_cited_passages(cli_env, capsys):
    assert main(["query", QUESTION, "--actor", "support_prod", "--top-k", "3", "--namespace", "knowledge:faq"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("status: success")
    passages = [line for line in out.splitlines() if re.match(r"\s*\d+\. ", line)]
    assert len(passages) == 3
    assert all("@" in line and "knowledge:faq" in line for line in passages)


def test_the_grant_applies_to_the_cli(cli_env, capsys):
    assert main(["query", "alias latest rollback promote", "--actor", "chatbot_prod", "--namespace", "internal:code",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(p["namespace"] != "internal:code" for p in out["passages"])
    assert "internal:code" not in out["index_versions"]


def test_a_quarantined_data_dir_fails(new_data_dir, tmp_path, monkeypatch, capsys):
    data = new_data_dir(tmp_path / "empty")
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(data))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(data))
    assert main(["query", QUESTION, "--actor", "chatbot_prod"]) == 1
    assert "quarantined" in capsys.readouterr().err


def test_bad_arguments(cli_env, capsys):
    assert main(["query", "x" * 1001, "--actor", "chatbot_prod"]) == 2
    assert main(["query", QUESTION, "--actor", "chatbot_prod", "--top-k", "21"]) == 2
    with pytest.raises(SystemExit):
        main(["query", QUESTION, "--actor", "root"])


def test_serve_refuses_an_unknown_actor_before_listening(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KNOWLEDGE_API_KEYS", "superuser=some-long-secret-key-1")
    assert main(["serve", "--port", "0"]) == 1
    assert "unknown actor 'superuser'" in capsys.readouterr().err
