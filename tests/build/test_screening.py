"""Screening in a real build: every planted secret format, in every file type and metadata field,
quarantines its document with ``secret-detected`` and never reaches a chunk; personal data stays out
of ``knowledge:*``; a reviewed finding is let through by the allowlist or the inline marker;
symbolic links are never followed."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path

import pytest

from knowledge_plane.build.stages import BuildContext, raw_documents
from knowledge_plane.storage.index_store import read_version
from knowledge_plane.storage.registry import Registry
from tests.conftest import SAMPLE_CORPUS
from tests.documents import secret_formats

CLEAN = "# Plaquettes\n\nLes plaquettes avant se changent par paire, tous les 30 000 km environ.\n"


def version_payloads(settings, namespace: str, version: str) -> list[dict]:
    record = Registry(settings.registry.url.get_secret_value(), settings.tenant_id).version(namespace, version)
    return read_version(Path(record.path)).payloads


def served(payloads: list[dict]) -> str:
    """Every payload field that can be served, as one string to search."""
    return json.dumps(payloads, ensure_ascii=False)


def _docx(body: str | None = None, heading: str | None = None) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(heading or "Configuration", level=1)
    document.add_paragraph(body or "Voir le coffre de l'équipe.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pptx(title: str) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = "Accès à la base de production."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _csv_cell(line: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["service", "owner", "value"])
    writer.writerow(["backup", "ops", line])
    return out.getvalue().encode()


# file type → (file name suffix, bytes holding the line, sidecar bytes or None)
PLANTERS = {
    "txt": lambda line: (".txt", f"Configuration\n\n{line}\n".encode(), None),
    "md": lambda line: (".md", f"# Configuration\n\n{line}\n".encode(), None),
    "md front matter": lambda line: (".md", f"---\nnote: {json.dumps(line)}\n---\n{CLEAN}".encode(), None),
    "md heading": lambda line: (".md", f"# Configuration\n\n## {line}\n\nVoir le coffre.\n".encode(), None),
    "html": lambda line: (
        ".html",
        f"<html><body><h1>Config</h1><p>{html.escape(line)}</p></body></html>".encode(),
        None,
    ),
    "html entities": lambda line: (
        ".html",
        ("<html><body><h1>Config</h1><p>" + "".join(f"&#{ord(c)};" for c in line) + "</p></body></html>").encode(),
        None,
    ),
    "html title": lambda line: (
        ".html",
        f"<html><body><h1>{html.escape(line)}</h1><p>Voir le coffre.</p></body></html>".encode(),
        None,
    ),
    "csv": lambda line: (".csv", _csv_cell(line), None),
    "json": lambda line: (".json", json.dumps({"items": [{"question": "Accès ?", "answer": line}]}).encode(), None),
    "docx body": lambda line: (".docx", _docx(body=line), None),
    "docx heading": lambda line: (".docx", _docx(heading=line), None),
    "pptx title": lambda line: (".pptx", _pptx(line), None),
    "sidecar": lambda line: (".md", CLEAN.encode(), json.dumps({"title": line}).encode()),
}
# A value alone in a cell of data is caught by the entropy detector; in prose it is not a secret.
DATA_ONLY = {"CSV cell AWS secret"}
# Tokens recognisable without a name before them (a vendor prefix), fit for a file name.
SELF_EVIDENT = [
    "AWS access key id",
    "OpenAI key",
    "Stripe live key",
    "Stripe restricted key",
    "Google API key",
    "GitHub token",
    "GitHub fine-grained",
    "GitLab token",
    "Slack bot token",
    "JSON Web Token",
]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def test_every_secret_format_in_every_file_type_is_quarantined_and_never_served(settings, corpus, build_corpus):
    folder = corpus / "guides" / "planted"  # the Dagster partitions are the sample's namespaces
    folder.mkdir()
    (folder / "propre.md").write_text(CLEAN, encoding="utf-8")
    expected: dict[str, str] = {}
    secrets = secret_formats()
    for kind, (line, _) in secrets.items():
        for file_type, plant in PLANTERS.items():
            if kind in DATA_ONLY and file_type != "csv":
                continue
            suffix, data, sidecar = plant(line)
            name = f"{_slug(kind)}--{_slug(file_type)}{suffix}"
            (folder / name).write_bytes(data)
            if sidecar is not None:
                (folder / f"{name}.meta.json").write_bytes(sidecar)
            expected[name] = f"{kind} in {file_type}"
    # A file name is served as the source path: a token recognisable alone is planted there.
    for kind in SELF_EVIDENT:
        name = f"{secrets[kind][1]}.md"
        (folder / name).write_text(CLEAN, encoding="utf-8")
        expected[name] = f"{kind} in the file name"

    success, reports = build_corpus(settings, ["knowledge:guides"])

    report = reports["knowledge:guides"]
    assert success and report["promoted"], report.get("reason")
    reasons = {q["path"].rsplit("/", 1)[-1]: q for q in report["quarantined"]}
    assert all(q["path"].startswith("knowledge/guides/planted/") for q in report["quarantined"])
    missed = [what for name, what in expected.items() if reasons.get(name, {}).get("reason") != "secret-detected"]
    assert missed == []
    assert len(expected) > 300
    # A quarantine says kind, line and fingerprint, never the secret (a file named after one is
    # named by its path, as every quarantined file is).
    details = " ".join(q["detail"] for q in report["quarantined"] if "--" in q["path"])
    text = served(version_payloads(settings, "knowledge:guides", report["version"]))
    for _, value in secrets.values():
        assert value not in text
        assert value not in details
    assert "30 000 km" in text  # the clean document is published
    assert "line" in details and "fingerprint" in details and ".secrets.baseline" in details


def test_upload_metadata_and_sidecar_objects_are_screened(s3_settings, build_corpus):
    from knowledge_plane.storage.object_store import open_object_store

    store = open_object_store(s3_settings)
    secrets = secret_formats()
    token = secrets["GitHub token"][1]
    store.put("uploads/default/pack-a/propre.md", CLEAN.encode(), {"source_app": "notes"})
    store.put("uploads/default/pack-a/titre.md", CLEAN.encode(), {"title": f"Acces {token}"})
    store.put("uploads/default/pack-a/tags.md", CLEAN.encode())
    store.put("uploads/default/pack-a/tags.md.meta.json", json.dumps({"tags": [secrets["DB_PASSWORD"][0]]}).encode())
    success, reports = build_corpus(s3_settings, ["knowledge:uploads"])
    report = reports["knowledge:uploads"]
    assert success and report["promoted"]
    reasons = {q["path"].rsplit("/", 1)[-1]: (q["reason"], q["detail"]) for q in report["quarantined"]}
    assert reasons["titre.md"][0] == reasons["tags.md"][0] == "secret-detected"
    assert "upload metadata 'title'" in reasons["titre.md"][1] and "'tags'" in reasons["tags.md"][1]
    text = served(version_payloads(s3_settings, "knowledge:uploads", report["version"]))
    assert token not in text and secrets["DB_PASSWORD"][1] not in text and "30 000 km" in text


PERSONAL = {
    "clients.csv": "nom,email,telephone\nMartin,jeanne.martin@gmail.com,06 12 34 56 78\n",
    "commandes.json": json.dumps(
        {"items": [{"question": "Qui a commandé ?", "answer": "Paul Durand, paul.durand@orange.fr"}]}
    ),
    "remboursements.md": "# Remboursements\n\n| Client | IBAN |\n|---|---|\n"
    "| Durand | FR76 3000 6000 0112 3456 7890 189 |\n",
    "paiement.md": "# Incident\n\nLe client a payé avec la carte 4970 1012 3456 7893 hier.\n",
    "liste.md": "# Contacts\n\n" + "\n".join(f"- Client {i} : client.{i}@free.fr" for i in range(6)) + "\n",
}
NOT_PERSONAL = {
    # Documentation names its authors and the support line: one address in prose is not a leak.
    "auteur.md": "# Guide\n\nRédigé par Jeanne Martin (jeanne.martin@gmail.com). Support : 01 23 45 67 89.\n",
    "contact.csv": "service,adresse\nSAV,support@automecanik.fr\nexemple,client@example.com\n",
    # Sixteen digits that fail the Luhn check are an order number, not a card.
    "commande.md": "# Suivi\n\nCommande 4970 1012 3456 7899 expédiée.\n",
}


def test_personal_data_is_kept_out_of_knowledge_namespaces(settings, corpus, build_corpus):
    folder = corpus / "vehicle" / "clients"
    folder.mkdir()
    for name, text in {**PERSONAL, **NOT_PERSONAL}.items():
        (folder / name).write_text(text, encoding="utf-8")
    success, reports = build_corpus(settings, ["knowledge:vehicle"])
    report = reports["knowledge:vehicle"]
    assert success and report["promoted"]
    reasons = {q["path"].rsplit("/", 1)[-1]: q["reason"] for q in report["quarantined"]}
    assert reasons == {name: "personal-data" for name in PERSONAL}
    text = served(version_payloads(settings, "knowledge:vehicle", report["version"]))
    assert "Rédigé par Jeanne Martin" in text and "support@automecanik.fr" in text
    assert "paul.durand" not in text and "FR76" not in text and "7893" not in text and "7899" in text


def test_a_reviewed_example_is_let_through_by_the_baseline_or_the_inline_marker(settings, corpus, build_corpus):
    guides = corpus / "guides"
    example = "Exemple : `add_password(realm='PDQ', uri='https://mahler:8092/', user='klem', passwd='kadidd!ehopper')`"
    (guides / "exemple-auth.md").write_text(f"# Authentification\n\n{example}\n", encoding="utf-8")
    marked = "DB_" + "PASSWORD=" + "exemple-Doc-2024"
    (guides / "exemple-env.md").write_text(
        f"# Variables\n\n```\n{marked}  # pragma: allowlist secret\n```\n", encoding="utf-8"
    )
    success, reports = build_corpus(settings, ["knowledge:guides"])
    quarantined = {q["path"]: q for q in reports["knowledge:guides"]["quarantined"]}
    assert success and list(quarantined) == ["knowledge/guides/exemple-auth.md"]
    detail = quarantined["knowledge/guides/exemple-auth.md"]["detail"]
    assert "pragma: allowlist secret" in detail and ".secrets.baseline" in detail
    # The maintainer pastes the entry the quarantine gave into the baseline beside the corpus.
    entries = [json.loads(e) for e in re.findall(r'\{"type": [^}]*\}', detail)]
    baseline = {"results": {"knowledge/guides/exemple-auth.md": entries}}
    (corpus / ".secrets.baseline").write_text(json.dumps(baseline), encoding="utf-8")

    success, reports = build_corpus(settings, ["knowledge:guides"])
    report = reports["knowledge:guides"]
    assert success and report["promoted"] and report["quarantined"] == []
    assert next(c for c in report["checks"] if c["name"] == "no_secrets")["passed"]
    text = served(version_payloads(settings, "knowledge:guides", report["version"]))
    assert "kadidd!ehopper" in text and marked in text


def test_symbolic_links_are_not_followed(settings, corpus, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    guides = corpus / "guides"
    (guides / "passwd.md").symlink_to(outside / "passwd")
    (guides / "runbook.md").symlink_to(corpus / "runbooks" / "procedure-remboursement.md")
    (guides / "dossier").symlink_to(outside, target_is_directory=True)
    (guides / "choisir-batterie.md.meta.json").symlink_to(outside / "passwd")

    record = raw_documents(BuildContext(settings, run_id="links"), "knowledge:guides")

    quarantined = {q["path"]: q for q in record.quarantined}
    assert {p: q["reason"] for p, q in quarantined.items()} == {
        "knowledge/guides/passwd.md": "symlink",
        "knowledge/guides/runbook.md": "symlink",
        "knowledge/guides/dossier": "symlink",
        "knowledge/guides/choisir-batterie.md": "symlink",
    }
    assert str(outside / "passwd") in quarantined["knowledge/guides/passwd.md"]["detail"]
    assert "procedure-remboursement.md" in quarantined["knowledge/guides/runbook.md"]["detail"]
    assert "metadata sidecar" in quarantined["knowledge/guides/choisir-batterie.md"]["detail"]
    listed = {f["source_path"] for f in record.files}
    assert listed and not listed & set(quarantined)


def test_a_file_replaced_by_a_link_after_listing_is_not_read(settings, corpus, tmp_path):
    from knowledge_plane.build.stages import parsed_documents

    (tmp_path / "secret.md").write_text("# Interne\n\nNe pas diffuser.\n", encoding="utf-8")
    target = corpus / "guides" / "nouveau-guide.md"
    target.write_text("# Nouveau\n\nUn guide que personne n'a encore lu (aucun cache).\n", encoding="utf-8")
    ctx = BuildContext(settings, run_id="swap")
    raw_documents(ctx, "knowledge:guides")
    target.unlink()
    target.symlink_to(tmp_path / "secret.md")
    record = parsed_documents(ctx, "knowledge:guides")
    reasons = {q["path"]: q["reason"] for q in record.quarantined}
    assert reasons == {"knowledge/guides/nouveau-guide.md": "symlink"}
    assert all("Ne pas diffuser" not in s["text"] for d in record.documents for s in d["sections"])


@pytest.mark.parametrize("domain", sorted(p.name for p in SAMPLE_CORPUS.iterdir() if p.is_dir()))
def test_the_sample_corpus_has_nothing_to_screen_out(settings, domain):
    namespace = f"knowledge:{domain}"
    from knowledge_plane.build.stages import parsed_documents

    ctx = BuildContext(settings, run_id="sample")
    raw_documents(ctx, namespace)
    assert parsed_documents(ctx, namespace).quarantined == []
