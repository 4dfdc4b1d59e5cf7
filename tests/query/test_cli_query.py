"""``knowledge query`` answers in-process with the API's response; ``knowledge serve`` checks its keys first."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from knowledge_plane.cli.main import main
from tests.query.support import PROJECT_ROOT, headers, registry_url_of

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
    assert set(out) == set(api) | {"explain"}  # the API's response, and why the gate decided
    assert out["status"] == api["status"] == "success"
    assert [p["chunk_id"] for p in out["passages"]] == [p["chunk_id"] for p in api["passages"]]
    assert out["index_versions"] == api["index_versions"]


def test_text_output_shows_status_and_cited_passages(cli_env, capsys):
    assert main(["query", QUESTION, "--actor", "support_prod", "--top-k", "3", "--namespace", "knowledge:faq"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("status: success")
    passages = [line for line in out.splitlines() if re.match(r"\s*\d+\. ", line)]
    assert 1 <= len(passages) <= 3
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


def passage_scores(text: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^\s*\d+\. (\d\.\d+)  ", text, flags=re.M)]


def test_text_lists_passages_by_score_and_explain_shows_the_gate(cli_env, capsys):
    assert main(["query", QUESTION, "--actor", "chatbot_prod", "--top-k", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    explain = data["explain"]
    assert explain["status"] == data["status"] == "success"
    assert explain["reason"].startswith(f"{explain['above_threshold']} candidate(s) cleared")
    assert explain["thresholds"] == {ns: 0.36 for ns in data["index_versions"]}  # knowledge:* default
    best = explain["best_candidates"]
    # Those the relevance model judged first, by relevance; then the others by score.
    judged = [c for c in best if c["relevance"] is not None]
    assert best[: len(judged)] == judged
    assert [c["relevance"] for c in judged] == sorted((c["relevance"] for c in judged), reverse=True)
    scored = best[len(judged):]
    assert [c["score"] for c in scored] == sorted((c["score"] for c in scored), reverse=True)
    # A passage with a relevance clears by it (from the floor: the best relevance less the spread), else by score.
    assert all(c["cleared"] == (c["score"] >= c["threshold"] if c["relevance"] is None
                                else c["relevance"] >= explain["relevance_floor"]) for c in best)
    # The returned passages are the first cleared ones in fused rank: the explanation names them.
    returned = sorted((c for c in best if c["returned"]), key=lambda c: c["fused_rank"])
    assert [c["score"] for c in returned] == [p["score"] for p in data["passages"]][: len(returned)]

    assert main(["query", QUESTION, "--actor", "chatbot_prod", "--top-k", "5"]) == 0
    text = capsys.readouterr().out
    scores = passage_scores(text)
    # the same passages, by score (printed with 3 decimals)
    assert scores == [float(f"{score:.3f}") for score in sorted((p["score"] for p in data["passages"]), reverse=True)]
    assert "why success" not in text  # only with --explain
    assert main(["query", QUESTION, "--actor", "chatbot_prod", "--top-k", "5", "--explain"]) == 0
    text = capsys.readouterr().out
    assert passage_scores(text) == scores
    assert f"why success: {explain['reason']}" in text and "thresholds: knowledge:" in text


def test_explain_says_why_a_question_is_turned_away(cli_env, capsys):
    assert main(["query", "Quelle est la capitale de l'Australie ?", "--actor", "chatbot_prod", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    explain = data["explain"]
    assert data["status"] == explain["status"] == "needs_clarification" and not data["passages"]
    cleared = explain["above_threshold"]
    assert cleared < explain["min_passages"] == 3
    assert explain["reason"] == f"{cleared} candidate(s) cleared their namespace's threshold, 3 needed"
    assert explain["best_candidates"] and not any(c["returned"] for c in explain["best_candidates"])
    assert sum(c["cleared"] for c in explain["best_candidates"]) == min(cleared, len(explain["best_candidates"]))

    assert main(["query", "appelez-moi au 06 12 34 56 78", "--actor", "chatbot_prod", "--json"]) == 0
    explain = json.loads(capsys.readouterr().out)["explain"]
    assert explain["status"] == "redirect" and explain["reason"].startswith("personal data in the question")
    assert explain["best_candidates"] == [] and explain["candidates"] == 0  # nothing was searched


def test_unknown_and_never_built_namespaces_are_told_apart(cli_env, capsys):
    assert main(["query", QUESTION, "--actor", "support_prod", "--namespace", "knowledge:nope", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith("unknown namespace 'knowledge:nope'")
    # knowledge:uploads is a namespace of every deployment; no document was ever uploaded to it here.
    assert main(["query", QUESTION, "--actor", "support_prod", "--namespace", "knowledge:uploads", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith("namespace knowledge:uploads has never been built")


def test_json_output_draws_no_progress_bar(built):
    """With the torch backend the model is loaded by transformers, whose "Loading weights" bar used to
    reach stderr even with --json: machine output is now quiet on both streams."""
    env = {**os.environ, "KNOWLEDGE_DATA_DIR": str(built), "KNOWLEDGE_REGISTRY_URL": registry_url_of(built),
           "KNOWLEDGE_EMBEDDING_BACKEND": "torch", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "knowledge_plane.cli.main", "query", QUESTION, "--actor",
                             "chatbot_prod", "--json"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "success"
    assert "Loading weights" not in result.stderr and "it/s" not in result.stderr, result.stderr
