"""Secret and personal-data detection: each format is found, code and prose are not, reviewed
findings are let through."""

import hashlib
import json

import pytest

from knowledge_plane.build.personal_data import BULK, find_personal_data
from knowledge_plane.build.secrets import Allowlist, find_secrets, scan_parts
from tests.documents import fake_secrets, secret_formats


@pytest.mark.parametrize("kind", list(fake_secrets()))
def test_each_detector_fires(kind):
    assert kind in {f.kind for f in find_secrets(fake_secrets()[kind])}


@pytest.mark.parametrize("name", list(secret_formats()))
def test_every_format_is_found_and_fingerprinted_like_detect_secrets(name):
    line, value = secret_formats()[name]
    findings = find_secrets(line, data_like=name == "CSV cell AWS secret")
    assert findings
    # A finding never holds the value; its fingerprint is detect-secrets' hashed_secret (SHA-1).
    assert all(value not in f.describe() for f in findings)
    assert all(len(f.fingerprint) == 40 for f in findings)


@pytest.mark.parametrize(
    "text",
    [
        'name, secret = item.partition("=")',
        "api_key: Annotated[str | None, Security(header)]",
        "secret = compute_secret_value(x)",
        "password: str = Field(description='...')",
        "pwd = self.password_field",
        "password: <votre mot de passe>",
        "Le mot de passe doit contenir 12 caractères.",
        "Mot de passe : choisissez-en un long",
        "token = ${API_TOKEN}",
        'SECRET_DETECTED = "secret-detected"',
        'API_KEYS_ENV = "KNOWLEDGE_API_KEYS"',
        "Connect with postgresql://user:password@localhost/db or ftp://user:pass@host/",
        "HTTP Basic authentication and Bearer tokens are both supported.",
        "The commit '3f786850e387550fdab836ed7e6dc881de23001b' fixed it.",
        "uuid = '123e4567-e89b-12d3-a456-426614174000'",
        "A clé secrète is stored in the vault, never in this page.",
        # Python's own documentation, as Docling extracts its code blocks (one line per block).
        ">>> token_hex ( 16 ) 'f9bf78b9a18ce6d46a0cd2b0b86df9da'",
        ">>> dk = pbkdf2_hmac ( 'sha256' , b 'password' , b 'bad salt' * 2 , 500_000 ) >>> dk . hex () "
        "'15530bba69924174860db778f2c6f8104d3aaf9d26241840c8c4a641c8d000a9'",
        "if cryptedpasswd == 'x' or cryptedpasswd == '*' : raise ValueError ( 'no support for shadow passwords' )",
    ],
)
def test_code_and_prose_are_not_secrets(text):
    assert find_secrets(text) == []


@pytest.mark.parametrize("text", ['password = "Sup3rS3cret!"', "PASSWORD=changeme123", "api_key: 'k9f8g7h6j5'"])
def test_assignments_of_literal_values_are_secrets(text):
    assert "password assignment" in [f.kind for f in find_secrets(text)]


def test_the_inline_marker_lets_a_reviewed_line_through():
    secret = "DB_" + "PASSWORD=Exempl3-pour-la-doc"
    assert find_secrets(secret)
    assert find_secrets(f"{secret}  # pragma: allowlist secret") == []
    assert find_secrets(f"# pragma: allowlist nextline secret\n{secret}") == []
    findings, allowed = scan_parts([("raw", f"{secret}  <!-- pragma: allowlist secret -->")])
    assert findings == [] and len(allowed) == 1


def test_scan_parts_names_the_part_and_its_line():
    findings, _ = scan_parts([("the title", "Guide"), ("section 2", "intro\n" + fake_secrets()["AWS access key id"])])
    assert {(f.where, f.line) for f in findings} == {("section 2", 2)}


def test_the_baseline_is_detect_secrets_layout(tmp_path):
    value = "kadidd!ehopper"
    digest = hashlib.sha1(value.encode()).hexdigest()
    baseline = {"results": {"knowledge/a.md": [{"type": "Secret Keyword", "hashed_secret": digest, "line_number": 3}]}}
    (tmp_path / ".secrets.baseline").write_text(json.dumps(baseline), encoding="utf-8")
    allowlist = Allowlist.load(tmp_path)
    assert allowlist.for_path("knowledge/a.md") == {digest} and allowlist.for_path("knowledge/b.md") == set()
    (tmp_path / ".secrets.baseline").write_text('{"results": {"knowledge/a.md": [{"type": "x"}]}}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a detect-secrets baseline"):
        Allowlist.load(tmp_path)


def test_the_scanner_does_not_flag_its_own_source():
    from pathlib import Path

    import knowledge_plane.build.personal_data
    import knowledge_plane.build.screening
    import knowledge_plane.build.secrets

    for module in (knowledge_plane.build.secrets, knowledge_plane.build.personal_data, knowledge_plane.build.screening):
        assert find_secrets(Path(module.__file__).read_text(), filename=module.__file__) == []


def kinds(parts):
    return sorted(f.kind for f in find_personal_data(parts))


def test_one_personal_value_in_data_is_enough():
    assert kinds([("", "nom,email\nMartin,jeanne.martin@gmail.com", True)]) == ["e-mail address"]
    assert kinds([("", "client;06 12 34 56 78", True)]) == ["phone number"]


def test_role_mailboxes_and_example_domains_are_not_personal():
    data = "support@automecanik.fr, noreply@shop.fr, jane@example.com, joe@mail.test, contact+rgpd@x.fr"
    assert kinds([("", data, True)]) == []


def test_prose_names_people_but_not_in_bulk():
    few = " ".join(f"m{i}@debian.org" for i in range(BULK - 1))
    many = " ".join(f"m{i}@debian.org" for i in range(BULK))
    assert kinds([("", f"Maintainers: {few}", False)]) == []
    assert kinds([("", f"Clients : {many}", False)]) == ["e-mail address"] * BULK


def test_iban_and_cards_are_checked_by_their_checksum_anywhere():
    assert kinds([("", "Virement sur FR76 3000 6000 0112 3456 7890 189.", False)]) == ["IBAN"]
    assert kinds([("", "Virement sur FR76 3000 6000 0112 3456 7890 188.", False)]) == []
    assert kinds([("", "Carte 4970 1012 3456 7893 refusée.", False)]) == ["payment card number"]
    assert kinds([("", "Commande 4970 1012 3456 7899 expédiée.", False)]) == []


def test_the_no_secrets_check_reads_every_served_field_and_honours_reviewed_findings():
    import numpy as np

    from knowledge_plane.build.checks import run_checks

    token = secret_formats()["GitHub token"][1]
    payload = {"chunk_id": "c1", "doc_id": "d1", "text": "Rien à signaler.", "title": "Guide", "source_path": "k/a.md"}
    vectors = np.eye(1, 384, dtype=np.float32)

    def no_secrets(payload, allowed=None):
        checks = run_checks("knowledge:guides", vectors, [payload], 384, allowed)
        return next(c for c in checks if c.name == "no_secrets")

    assert no_secrets(payload).passed
    for field, value in (("title", f"Jeton {token}"), ("heading_path", ["Accès", token]), ("location", f"§ {token}")):
        check = no_secrets({**payload, field: value})
        assert not check.passed and f"{field}: GitHub" in check.detail and token not in check.detail
    reviewed = {"d1": {f.fingerprint for f in find_secrets(f"Jeton {token}")}}
    assert no_secrets({**payload, "title": f"Jeton {token}"}, reviewed).passed
