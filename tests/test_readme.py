"""Documentation that is tested: the README and ``docs/`` name every CLI command, asset, job, sensor
and schedule, and nothing in them (or in the code's docstrings and comments) points at a file,
module or section the repository does not have.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
import warnings
from functools import cache
from pathlib import Path

import pytest

from knowledge_plane.cli.reference import command_paths

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)


@pytest.mark.parametrize("command", command_paths())
def test_every_cli_command_is_documented(command):
    words = command.split()
    # "knowledge facts approve" may be written "knowledge facts show ID | approve ID…"
    assert command in DOCS or (" ".join(words[:2]) in DOCS and f" {words[-1]} " in DOCS), command


def definition_names() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from definitions import defs
    names = [key.to_user_string() for a in defs.assets for key in a.keys]
    names += [j.name for j in defs.jobs] + [s.name for s in defs.sensors] + [s.name for s in defs.schedules]
    return names


@pytest.mark.parametrize("name", definition_names())
def test_every_asset_job_sensor_and_schedule_is_documented(name):
    assert f"`{name}`" in DOCS, name


def quarantine_reasons() -> list[str]:
    from knowledge_plane.domain import quarantine

    return sorted(v for k, v in vars(quarantine).items() if k.isupper() and isinstance(v, str))


@pytest.mark.parametrize("reason", quarantine_reasons())
def test_every_quarantine_reason_is_documented(reason):
    # CI scripts and the Dagster metadata show these codes: a reader must find what each means.
    assert f"`{reason}`" in DOCS, reason


# --- links, paths, modules and sections that must exist ---------------------------------------------


@cache
def tracked_files() -> frozenset[str]:
    """The repository's files (tracked or new, not ignored), relative to the root."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return frozenset(line for line in out.splitlines() if (ROOT / line).exists())


@cache
def tracked_dirs() -> frozenset[str]:
    return frozenset(str(parent) for f in tracked_files() for parent in Path(f).parents if str(parent) != ".")


def exists_in_repo(relative: str) -> bool:
    relative = relative.rstrip("/")
    return relative in tracked_files() or relative in tracked_dirs()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} +(.+)$", text, flags=re.M)]


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?: \"[^\"]*\")?\)")


def relative_links() -> list[tuple[str, str]]:
    found = []
    for doc in DOC_FILES:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target):
                found.append((str(doc.relative_to(ROOT)), target))
    return found


# Written on other branches of issue 13; linked from here before they are merged.
@pytest.mark.parametrize(("doc", "target"), relative_links())
def test_every_relative_link_resolves(doc, target):
    path, _, anchor = target.partition("#")
    file = (ROOT / doc).parent / path if path else ROOT / doc
    relative = str(file.resolve().relative_to(ROOT))
    assert exists_in_repo(relative), f"{doc} links to {target}: no such file in the repository"
    if anchor:
        assert anchor in {slug(h) for h in headings(file)}, f"{doc} links to {target}: no such heading"


# A path inside the repository: a top-level folder of the project, or one of the old layout's
# (core/, query_service/, governance_console/, a top-level cli/), which must no longer be named.
PATH = re.compile(
    r"(?<![\w./$~-])((?:knowledge_plane|assets|bench|tests|docs|deploy|scripts|jobs|sensors|resources"
    r"|core|query_service|governance_console|cli)/[\w./-]*)"
)
# A dotted module path of the library (``knowledge_plane.serving.query_engine.QueryEngine``), or of
# the old layout's packages, which no longer exist.
MODULE = re.compile(r"(?<![\w./-])((?:knowledge_plane|core|query_service|governance_console)(?:\.[A-Za-z_]\w*)+)")
# A pointer at a section: README, "Evaluation" / docs/quality.md, section "Evaluation".
SECTION = re.compile(r"(README|docs/[\w-]+\.md)(?:'s)?,? (?:section )?[\"“]([^\"”]+)[\"”]")


def python_prose(path: Path) -> str:
    """The docstrings and comments of a Python file: what a reader takes as pointers."""
    source = path.read_text(encoding="utf-8")
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if doc := ast.get_docstring(node, clean=False):
                parts.append(doc)
    return "\n".join(parts)


# Configuration files whose comments point at documentation and files.
CONFIG_FILES = {"pyproject.toml", "Dockerfile", "scripts/test", ".ci/run"}


@cache
def prose_sources() -> list[tuple[str, str]]:
    """(file, text) of every documentation file and of the docstrings and comments of the code."""
    sources = [(str(doc.relative_to(ROOT)), doc.read_text(encoding="utf-8")) for doc in DOC_FILES]
    sources += [("bench/README.md", (ROOT / "bench/README.md").read_text(encoding="utf-8"))]
    for name in sorted(tracked_files()):
        if name.endswith(".py") and name != "tests/test_readme.py":  # this file names the old layout
            sources.append((name, python_prose(ROOT / name)))
        elif name in CONFIG_FILES or name.endswith((".yaml", ".yml")):
            # The corpus' documents are content, not documentation; its golden files' comments are.
            if not name.startswith("knowledge/") or name.endswith("_golden.yaml"):
                sources.append((name, (ROOT / name).read_text(encoding="utf-8")))
    return sources


def mentions(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = set()
    for name, text in prose_sources():
        for match in pattern.finditer(text):
            found.add((name, match.group(1).rstrip(".,;:")))
    return sorted(found)


@pytest.mark.parametrize(("source", "path"), mentions(PATH))
def test_every_path_mentioned_exists(source, path):
    # A glob (tests/query/*.py) names the folder it looks in.
    path = path.split("*")[0]
    assert exists_in_repo(path), f"{source} mentions {path}, which the repository does not have"


def module_exists(dotted: str) -> bool:
    """The longest module prefix is a module or package, and what follows is defined in it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        file = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if file.exists():
            rest = parts[cut:]
            if not rest:
                return True
            tree = ast.parse(file.read_text(encoding="utf-8"))
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
            names |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign | ast.AnnAssign)
                      for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
            names |= {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
            return rest[0] in names
    return False


@pytest.mark.parametrize(("source", "module"), mentions(MODULE))
def test_every_module_mentioned_exists(source, module):
    assert module_exists(module), f"{source} mentions {module}, which the library does not define"


def section_pointers() -> list[tuple[str, str, str]]:
    found = set()
    for name, text in prose_sources():
        for match in SECTION.finditer(text):
            found.add((name, match.group(1), " ".join(match.group(2).split())))
    return sorted(found)


@pytest.mark.parametrize(("source", "doc", "section"), section_pointers())
def test_every_section_pointed_at_exists(source, doc, section):
    path = ROOT / ("README.md" if doc == "README" else doc)
    assert path.exists(), f"{source} points at {doc}, which does not exist"
    assert any(section.lower() in h.lower() for h in headings(path)), \
        f"{source} points at {doc}, \"{section}\": no such section there"


def test_the_readme_commands_are_the_ones_ci_runs():
    """.ci/run runs the README's two commands on a clean clone: they must be the same text."""
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()]
    ci_commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd ", "export "))]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    assert [b.strip() for b in blocks[:2]] == ci_commands


# --- the README's commands, executed ------------------------------------------------------------

# The tour's commands that are cheap on a small corpus; `knowledge build` as written builds every
# namespace, the project's own code included (minutes), so the CI block (the same job) builds here.
RUN_AS_WRITTEN = ("status", "query", "rollback", "promote")


def readme_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_commands_run_as_written(tmp_path, registry_url):
    """The CI block (Dagster's `dg launch` with DAGSTER_HOME) builds a one-namespace corpus, twice,
    then every `knowledge status | query | rollback | promote` line of the README runs unchanged but
    for `.venv/bin` (this interpreter's) and VERSION (the version the second build made). The CI block
    runs as written but for its partition range, which names the sample corpus' first and last
    namespaces: here the corpus is knowledge/faq alone."""
    import json
    import os
    import shutil
    import sys

    corpus = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge" / "faq", corpus / "faq")
    bin_dir = str(Path(sys.executable).parent) + "/"
    env = {**os.environ, "KNOWLEDGE_DATA_DIR": str(tmp_path / "data"), "KNOWLEDGE_CORPUS_DIR": str(corpus),
           "KNOWLEDGE_REGISTRY_URL": registry_url, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("DAGSTER_HOME", None)
    if os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant":
        env |= {"KNOWLEDGE_VECTOR_BACKEND": "qdrant", "QDRANT_PATH": str(tmp_path / "qdrant")}

    def run(script: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script.replace(".venv/bin/", bin_dir)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{script}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        return done

    def status() -> dict:
        rows = json.loads(run(".venv/bin/knowledge status --json").stdout)
        return next(r for r in rows if r["namespace"] == "knowledge:faq")

    ci = next(b for b in readme_blocks() if "dg launch" in b)
    assert "'internal:code...knowledge:vehicle'" in ci and "DAGSTER_HOME=" in ci
    ci = ci.replace("'internal:code...knowledge:vehicle'", "'knowledge:faq...knowledge:faq'")
    run(ci)
    first = status()["latest"]
    assert first and (tmp_path / "data" / "dagster" / "history").is_dir()  # the project's instance, as the CLI's
    faq = corpus / "faq" / "livraison.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"].append({"question": "Livrez-vous en Corse ?", "answer": "Oui, sous 5 à 7 jours ouvrés."})
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    run(ci)
    second = status()
    assert second["latest"] != first and second["rollback"] == first

    lines = [line for block in readme_blocks()[2:] for line in block.splitlines()
             if line.startswith(".venv/bin/knowledge ") and line.split()[1] in RUN_AS_WRITTEN]
    assert {line.split()[1] for line in lines} == set(RUN_AS_WRITTEN), lines
    outputs = {line: run(line.replace("VERSION", second["latest"])).stdout for line in lines}
    answered = next(out for line, out in outputs.items() if "livraison" in line)
    assert answered.startswith("status: success")
    turned_away = next(out for line, out in outputs.items() if "--explain" in line)
    assert turned_away.startswith("status: needs_clarification") and "why needs_clarification:" in turned_away
    # rollback (back to the first version), then promote VERSION: the second one is served again.
    assert (status()["latest"], status()["rollback"]) == (second["latest"], first)
