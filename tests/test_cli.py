"""The knowledge command as a user runs it: JSON reports and exit codes, in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def knowledge(settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KNOWLEDGE_DATA_DIR": str(settings.data_dir),
        "KNOWLEDGE_CORPUS_DIR": str(settings.knowledge_dir),
        "DAGSTER_HOME": str(settings.data_dir / "dagster"),
        "KNOWLEDGE_REGISTRY_URL": settings.registry_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_build_status_rollback_round_trip(settings, corpus):
    first = knowledge(settings, "build", "--namespace", "knowledge:faq", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    faq = report["namespaces"][0]
    assert set(faq) >= {"version", "promoted", "documents", "chunks", "chunks_embedded", "quarantined"}
    assert faq["namespace"] == "knowledge:faq" and faq["promoted"] and faq["documents"] == 3
    (corpus / "faq" / "cassee.json").write_text("{")
    second = json.loads(knowledge(settings, "build", "--namespace", "knowledge:faq", "--json").stdout)
    assert second["namespaces"][0]["quarantined"] == [
        {
            "path": "knowledge/faq/cassee.json",
            "reason": "invalid-faq-json",
            "detail": "not valid JSON: Expecting property name enclosed in double quotes at line 1",
        }
    ]
    status = json.loads(knowledge(settings, "status", "--json").stdout)
    row = next(r for r in status if r["namespace"] == "knowledge:faq")
    assert row["latest"] == faq["version"] and row["rollback"] is None
    refused = knowledge(settings, "rollback", "knowledge:faq", "--json")
    assert refused.returncode == 1 and "no @rollback" in json.loads(refused.stdout)["error"]
    runs = list((settings.data_dir / "dagster").glob("history/runs.db")) or list(
        (settings.data_dir / "dagster").glob("**/*.db")
    )
    assert runs, "the build ran on the project's Dagster instance"


def test_unknown_namespace_is_a_clear_error(settings):
    result = knowledge(settings, "build", "--namespace", "knowledge:nope", "--json")
    assert result.returncode == 1
    assert "unknown namespace(s) knowledge:nope" in json.loads(result.stdout)["error"]
