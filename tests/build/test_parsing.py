"""Parsing every supported format, and each kind of bad input quarantined with its own reason."""

from __future__ import annotations

import json

import pytest

from knowledge_plane.build.parsing import parse_document
from knowledge_plane.domain import quarantine as q
from tests.documents import docx_bytes, fake_secrets, pdf_bytes, pptx_bytes, xlsx_bytes

GOOD_MD = b"""---
id: guides.test.v1
title: "Guide : test"
truth_level: L1
updated: 2026-05-01
---
# Guide : test

## Avant de commencer

Couper le contact.

### Outils

- cle dynamometrique
- chandelles
"""


def parse(data: bytes, name: str, **kwargs):
    return parse_document(
        data, namespace="knowledge:guides", source_path=f"knowledge/guides/{name}", content_hash="0" * 64, **kwargs
    )


def test_markdown_front_matter_is_read_before_docling_and_headings_become_paths():
    doc = parse(GOOD_MD, "test.md")
    assert (doc.doc_id, doc.title, doc.truth_level, doc.updated) == (
        "guides.test.v1",
        "Guide : test",
        "L1",
        "2026-05-01",
    )
    assert "truth_level" not in doc.text and "---" not in doc.text
    outils = next(s for s in doc.sections if s.heading_path[-1] == "Outils")
    assert outils.heading_path == ["Avant de commencer", "Outils"]
    assert "- cle dynamometrique" in outils.text


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("montage.docx", docx_bytes, "200 premiers kilomètres"),
        ("formation.pptx", pptx_bytes, "30 jours"),
        ("disques.xlsx", xlsx_bytes, "K9K"),
        (
            "page.html",
            lambda: b"<html><body><h1>Freins</h1><h2>Bruit</h2><p>Un sifflement signale l'usure.</p></body></html>",
            "sifflement",
        ),
        ("table.csv", lambda: b"modele,code\nClio III,K9K\n206,DV4\n", "DV4"),
    ],
)
def test_docling_formats(name, make, expected):
    doc = parse(make(), name)
    assert doc.parser == "docling"
    assert expected in doc.text


def test_docx_headings_give_heading_paths():
    doc = parse(docx_bytes(), "montage.docx")
    assert any(s.heading_path[-1:] == ["Rodage"] for s in doc.sections)


def test_pdf_falls_back_to_text_layer_and_says_so():
    doc = parse(pdf_bytes(), "garantie.pdf")
    assert doc.parser == "pdf-text-layer"
    assert "DOCLING_ARTIFACTS_PATH" in doc.parser_note
    assert "2 ans" in doc.text and doc.sections[0].location == "page 1"


def test_faq_json_one_section_per_question():
    data = {
        "id": "faq.x.v1",
        "title": "FAQ",
        "items": [
            {"question": "Délai ?", "answer": "30 jours."},
            {"question": "Prix ?", "answer": "Gratuit dès 59 €."},
        ],
    }
    doc = parse(json.dumps(data).encode(), "x.json")
    assert [s.kind for s in doc.sections] == ["qa", "qa"]
    assert doc.sections[1].text == "Q : Prix ?\nR : Gratuit dès 59 €."
    assert doc.doc_id == "faq.x.v1"


def test_python_one_section_per_function_and_class_with_line_range():
    source = (
        b'"""Module doc."""\n\n\ndef area(r: float) -> float:\n    return 3.14 * r * r\n\n\nclass Shape:\n'
        b'    """A shape."""\n\n    def grow(self, k):\n        return k\n'
    )
    doc = parse_document(source, namespace="internal:code", source_path="knowledge_plane/geo.py", content_hash="1" * 64)
    by_name = {tuple(s.heading_path): s for s in doc.sections}
    assert by_name[("knowledge_plane.geo", "area")].location == "lines 4-5"
    assert by_name[("knowledge_plane.geo", "area")].text.startswith("def area(r: float) -> float:")
    assert by_name[("knowledge_plane.geo", "Shape.grow")].location == "lines 11-12"
    assert "class Shape" in by_name[("knowledge_plane.geo", "Shape")].text
    assert doc.truth_level == "L2"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_INPUTS = [
    ("corrupt.docx", lambda: b"PK\x03\x04 this is not a zip archive at all", q.CORRUPT_DOCUMENT),
    ("truncated.docx", lambda: _truncated(docx_bytes()), q.CORRUPT_DOCUMENT),
    ("truncated.pptx", lambda: _truncated(pptx_bytes()), q.CORRUPT_DOCUMENT),
    ("truncated.pdf", lambda: pdf_bytes()[:60], q.CORRUPT_DOCUMENT),
    ("binary.md", lambda: bytes(range(256)) * 8, q.BINARY_CONTENT),
    ("latin1.md", lambda: "# Fiche\n\nPièce défectueuse".encode("latin-1"), q.INVALID_UTF8),
    ("blank.md", lambda: b"   \n\n  ", q.NO_TEXT),
    ("bad-yaml.md", lambda: b"---\ntitle: [unclosed\n---\n# Body\n\ntext", q.INVALID_FRONT_MATTER),
    ("unclosed.md", lambda: b"---\ntitle: x\n# Body\n", q.INVALID_FRONT_MATTER),
    ("bad-level.md", lambda: b"---\ntruth_level: L9\n---\n# Body\n\ntext", q.INVALID_FRONT_MATTER),
    ("bad-date.md", lambda: b"---\nupdated: hier\n---\n# Body\n\ntext", q.INVALID_FRONT_MATTER),
    ("bad.json", lambda: b'{"items": [{"question": "q?"', q.INVALID_FAQ_JSON),
    ("no-answer.json", lambda: b'{"items": [{"question": "q?", "answer": ""}]}', q.INVALID_FAQ_JSON),
    ("syntax.py", lambda: b"def broken(:\n    pass\n", q.CORRUPT_DOCUMENT),
    ("archive.exe", lambda: b"MZ\x90\x00", q.UNSUPPORTED_TYPE),
]


@pytest.mark.parametrize(("name", "make", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_quarantined_with_a_specific_reason(name, make, reason):
    with pytest.raises(q.QuarantineError) as info:
        parse(make(), name)
    assert info.value.reason == reason
    assert info.value.detail  # a sentence a person can act on


@pytest.mark.parametrize("kind", list(fake_secrets()))
def test_documents_with_secrets_are_quarantined_naming_the_kind_and_line(kind):
    secret = fake_secrets()[kind]
    with pytest.raises(q.QuarantineError) as info:
        parse(f"# Notes\n\nConfiguration :\n\n{secret}\n".encode(), "notes.md")
    assert info.value.reason == q.SECRET_DETECTED
    assert kind in info.value.detail and "line 5" in info.value.detail
    assert secret not in str(info.value)


def test_secret_inside_a_docx_is_found_after_extraction():
    import io

    import docx

    document = docx.Document()
    document.add_paragraph("Accès : " + fake_secrets()["AWS access key id"])
    out = io.BytesIO()
    document.save(out)
    with pytest.raises(q.QuarantineError) as info:
        parse(out.getvalue(), "acces.docx")
    assert info.value.reason == q.SECRET_DETECTED


def test_prose_about_passwords_is_not_a_secret():
    doc = parse(
        "# Compte\n\nLe mot de passe doit contenir 12 caractères. password: <votre mot de passe>\n".encode(),
        "compte.md",
    )
    assert "12 caractères" in doc.text
