"""The vector-store adapters type-check against the installed clients (qdrant-client, weaviate-client).

mypy reads the clients' own annotations (both ship ``py.typed``), so a call the client's API does not
accept — a renamed argument, a wrong type, an Optional used as a value — fails here, without a server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CHECKED = [
    "knowledge_plane/storage/vector_backends/qdrant.py",
    "knowledge_plane/storage/vector_backends/weaviate.py",
    "knowledge_plane/storage/retries.py",
]


def test_the_adapters_type_check_against_their_clients(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(tmp_path / "mypy-cache"),
         "--config-file", str(ROOT / "pyproject.toml"), *CHECKED],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 3 source files" in result.stdout
