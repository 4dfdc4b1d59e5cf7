"""Namespaces, .ragignore, hashing and raw-stage quarantine."""

from pathlib import Path

from knowledge_plane.build.sources import CODE_NAMESPACE, discover_namespaces, scan_namespace
from knowledge_plane.domain.quarantine import EMPTY_FILE, TOO_LARGE


def test_every_corpus_folder_is_a_namespace_plus_internal_code(settings, corpus: Path):
    (corpus / "nouveautes").mkdir()
    found = discover_namespaces(settings)
    assert CODE_NAMESPACE in found
    assert {"knowledge:diagnostic", "knowledge:faq", "knowledge:policies", "knowledge:nouveautes"} <= set(found)
    assert found == sorted(found)


def test_ragignore_skips_secrets_artefacts_and_media(settings, corpus: Path):
    for name in (".env", "cle.pem", "photo.png", "dump.sql", "node_modules/x.md"):
        target = corpus / "faq" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("ignored")
    files, quarantined, ignored = scan_namespace(settings, "knowledge:faq")
    paths = {f.source_path for f in files}
    assert ignored == 5
    assert not any(p.endswith((".env", ".pem", ".png", ".sql")) or "node_modules" in p for p in paths)
    assert quarantined == []


def test_sidecar_metadata_is_not_a_document_but_part_of_its_hash(settings, corpus: Path):
    files, _, _ = scan_namespace(settings, "knowledge:vehicle")
    csv = next(f for f in files if f.source_path.endswith(".csv"))
    assert not any(f.source_path.endswith(".meta.json") for f in files)
    sidecar = corpus / "vehicle" / "clio3-motorisations.csv.meta.json"
    sidecar.write_text(sidecar.read_text().replace("L2", "L1"))
    files, _, _ = scan_namespace(settings, "knowledge:vehicle")
    assert next(f for f in files if f.source_path.endswith(".csv")).content_hash != csv.content_hash


def test_empty_and_oversized_files_are_quarantined_before_parsing(settings, corpus: Path):

    (corpus / "faq" / "vide.md").write_bytes(b"")
    (corpus / "faq" / "enorme.md").write_text("x" * 70_000)
    files, quarantined, _ = scan_namespace(settings.updated(build={"max_file_bytes": 64_000}), "knowledge:faq")
    reasons = {q.path.rsplit("/", 1)[-1]: q.reason for q in quarantined}
    assert reasons == {"vide.md": EMPTY_FILE, "enorme.md": TOO_LARGE}
    assert all(f.size > 0 for f in files)


def test_content_hash_is_stable_and_code_namespace_covers_the_application(settings):
    first, _, _ = scan_namespace(settings, CODE_NAMESPACE)
    second, _, _ = scan_namespace(settings, CODE_NAMESPACE)
    assert [f.content_hash for f in first] == [f.content_hash for f in second]
    paths = {f.source_path for f in first}
    assert "knowledge_plane/build/chunking.py" in paths and "definitions.py" in paths
    assert not any(p.startswith(("tests/", "bench/")) for p in paths)


def test_each_file_carries_the_last_commit_that_touched_it(settings, corpus: Path):
    """From the newest commits of one ``git log`` read as it streams; names git would quote (accents)
    included, an uncommitted file has none."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(corpus.parent), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    accented = corpus / "faq" / "société-livraison.md"
    accented.write_text("# Livraison\n\nLa société livre en 48 heures.\n")
    git("add", ".")
    git("commit", "-q", "-m", "corpus")
    first = git("rev-parse", "HEAD")
    accented.write_text("# Livraison\n\nLa société livre en 24 heures.\n")
    git("commit", "-q", "-am", "faster")
    second = git("rev-parse", "HEAD")
    (corpus / "faq" / "brouillon.md").write_text("# Brouillon\n\nPas encore versionné.\n")

    commits = {f.source_path.rsplit("/", 1)[-1]: f.commit for f in scan_namespace(settings, "knowledge:faq")[0]}
    assert commits.pop("société-livraison.md") == second
    assert commits.pop("brouillon.md") is None
    assert commits and set(commits.values()) == {first}
