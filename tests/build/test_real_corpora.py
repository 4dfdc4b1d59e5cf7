"""Acceptance on real documentation nobody here wrote, built beside the sample corpus.

Three Debian documentation packages (installed by ``scripts/test``) become namespaces of their own:
Python's library reference (HTML, English), the Debian Administrator's Handbook (HTML, English) and
the Debian reference in French. A subset of pages keeps the test short; ``bench/real_corpora.py``
builds the whole packages. Everything runs as a user would: ``knowledge build --json`` in its own
process, twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, SAMPLE_CORPUS

PYDOCS = Path("/usr/share/doc/python3.11/html/library")
HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")
REFERENCE_FR = Path("/usr/share/debian-reference")

# namespace folder → (package directory, pages). urllib.request.html carries the documentation
# example `add_password(..., passwd='kadidd!ehopper')`: the one page that must be held back.
REAL_PAGES = {
    "pydocs": (PYDOCS, ["urllib.request.html", "getopt.html", "glob.html", "sched.html", "hmac.html",
                        "fnmatch.html", "atexit.html", "tomllib.html", "netrc.html", "getpass.html",
                        "copy.html", "colorsys.html", "keyword.html", "linecache.html"]),
    "handbook": (HANDBOOK, ["sect.why-debian-stable.html", "sect.who-is-this-book-for.html",
                            "sect.role-of-distributions.html", "sect.apt-file.html", "sect.power-management.html",
                            "sect.asynchronous-task-scheduling-anacron.html", "sect.ftp-file-server.html",
                            "sect.office-suites.html", "sect.knoppix.html", "sect.devuan.html"]),
    "reference-fr": (REFERENCE_FR, ["pr01.fr.html", "apa.fr.html", "ch08.fr.html"]),
}
EXPECTED_QUARANTINE = {("knowledge:pydocs", "urllib.request.html"): "secret-detected"}
CODE_OR_PLACEHOLDER = re.compile(r"[{}`]|\$[A-Za-z_{(]|\w\s*==?\s*\S|https?://|\[\s*['\"]")

pytestmark = pytest.mark.skipif(
    not all((directory / pages[0]).is_file() for directory, pages in REAL_PAGES.values()),
    reason="Debian's python3.11-doc, debian-handbook and debian-reference-fr are not installed "
    "(scripts/test installs them)",
)


def knowledge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "knowledge_plane.cli.main", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def real_builds(tmp_path_factory, new_registry_url):
    root = tmp_path_factory.mktemp("real-corpora")
    corpus = root / "knowledge"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    for folder, (directory, pages) in REAL_PAGES.items():
        (corpus / folder).mkdir()
        for page in pages:
            shutil.copyfile(directory / page, corpus / folder / page)
    env = {**os.environ, "KNOWLEDGE_CORPUS_DIR": str(corpus), "KNOWLEDGE_DATA_DIR": str(root / "data"),
           "DAGSTER_HOME": str(root / "data" / "dagster"), "KNOWLEDGE_REGISTRY_URL": new_registry_url(root)}
    if os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant" and not os.environ.get("QDRANT_URL"):
        env |= {"KNOWLEDGE_VECTOR_BACKEND": "qdrant", "QDRANT_PATH": str(root / "qdrant")}
    first = knowledge(env, "build", "--json")
    second = knowledge(env, "build", "--json")
    facts = knowledge(env, "facts", "list", "--json")
    return env, first, second, facts


def reports(result: subprocess.CompletedProcess) -> dict[str, dict]:
    assert result.stdout, result.stderr[-3000:]
    return {r["namespace"]: r for r in json.loads(result.stdout)["namespaces"]}


def test_every_namespace_is_promoted_beside_the_sample_corpus(real_builds):
    _, first, _, _ = real_builds
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    built = reports(first)
    assert {"knowledge:pydocs", "knowledge:handbook", "knowledge:reference-fr", "knowledge:faq"} <= set(built)
    for namespace, report in built.items():
        if namespace == "knowledge:uploads":
            continue
        assert report["promoted"], (namespace, report["reason"])
        assert report["chunks"] > 0, namespace


def test_only_documents_with_a_real_reason_are_quarantined(real_builds):
    _, first, _, _ = real_builds
    found = {(ns, Path(q["path"]).name): q["reason"] for ns, r in reports(first).items() for q in r["quarantined"]}
    assert found == EXPECTED_QUARANTINE


def test_no_fact_is_code_or_a_placeholder(real_builds):
    _, _, _, facts = real_builds
    assert facts.returncode == 0, facts.stderr
    listed = json.loads(facts.stdout)
    rows = listed if isinstance(listed, list) else listed.get("facts", [])
    real = [f for f in rows if f.get("namespace") in {f"knowledge:{folder}" for folder in REAL_PAGES}]
    garbage = [f for f in real if CODE_OR_PLACEHOLDER.search(f"{f.get('object')} {f.get('value')}")]
    assert garbage == []


def test_a_second_build_is_a_no_op(real_builds):
    _, first, second, _ = real_builds
    assert second.returncode == 0, second.stderr[-3000:]
    before, after = reports(first), reports(second)
    for namespace, report in after.items():
        assert report["chunks_embedded"] == 0, namespace
        assert report["version"] == before[namespace]["version"] and not report["promoted"], namespace
