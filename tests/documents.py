"""Real documents made on the fly (DOCX, PPTX, XLSX, PDF) and fake secrets assembled at run time.

Secrets are built from pieces so that this repository never holds a string a scanner would flag.
"""

from __future__ import annotations

import io


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Montage des plaquettes", level=1)
    document.add_paragraph("Desserrer les vis de l'étrier puis repousser le piston avec un outil adapté.")
    document.add_heading("Rodage", level=2)
    document.add_paragraph("Éviter les freinages appuyés pendant les 200 premiers kilomètres.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Formation support : retours"
    slide.placeholders[1].text = "Le client dispose de 30 jours pour retourner une pièce non montée."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Véhicule", "Code moteur", "Disque avant (mm)"])
    sheet.append(["Clio III 1.5 dCi", "K9K", "260"])
    sheet.append(["206 1.4 HDi", "DV4", "247"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pdf_bytes(text: str = "Garantie des pieces : 2 ans a compter de la livraison.") -> bytes:
    """A one-page PDF with a real text layer and a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def fake_secrets() -> dict[str, str]:
    """One sample per detector, assembled so the source never contains them whole."""
    dash = "-" * 5
    return {
        "private key block": f"{dash}BEGIN RSA PRIVATE KEY{dash}\nMIIEowIBAAKCAQEA\n{dash}END RSA PRIVATE KEY{dash}",
        "AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
        "OpenAI-style API key": "sk-" + "proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4",
        "JSON Web Token": "eyJ" + "hbGciOiJIUzI1NiJ9." + "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N",
        "password assignment": "pass" + "word = Sup3rS3cret!",
    }


# Random-looking values, cut in two so no scanner flags this file.
_B64_40 = "Zk3pQ8vR2nXw7YtB" + "5mLc9HsJ4dGa1EoUiK6qTfVb"
_ALNUM = "9fK2mQ7xR4tW8vB1" + "nL6pZ3sD5hJ0cY"


def secret_formats() -> dict[str, tuple[str, str]]:
    """Every secret format a build must catch: name → (the line as a document holds it, the secret
    itself, which must never reach a chunk). Assembled from pieces at run time."""
    dash = "-" * 5
    pw = "Tr0ub4dor" + "&3xK9"
    formats = {
        "private key": (
            f"{dash}BEGIN OPENSSH PRIVATE KEY{dash} b3BlbnNzaC1rZXktdjEAAAAA{dash}END",
            "b3BlbnNzaC1rZXktdjEAAAAA",
        ),
        "AWS access key id": ("aws_access_key_id = " + "AKIA" + "Z7Q4XK2MV9PL3RT8", "AKIA" + "Z7Q4XK2MV9PL3RT8"),
        "AWS secret (env)": ("AWS_SECRET_" + "ACCESS_KEY=" + _B64_40, _B64_40),
        "JSON AWS secret": ('{"aws_secret_' + 'access_key": "' + _B64_40[::-1] + '"}', _B64_40[::-1]),
        "CSV cell AWS secret": ("backup,ops," + _B64_40[5:] + "Ab3Cd", _B64_40[5:] + "Ab3Cd"),
        "OpenAI key": ("OPENAI_KEY " + "sk-" + "proj-" + _ALNUM + "Xy", "sk-" + "proj-" + _ALNUM + "Xy"),
        "Stripe live key": ("STRIPE_SECRET_KEY=" + "sk_" + "live_" + _ALNUM, "sk_" + "live_" + _ALNUM),
        "Stripe restricted key": ("cle stripe " + "rk_" + "live_" + _ALNUM[::-1], "rk_" + "live_" + _ALNUM[::-1]),
        "Google API key": ("cle google " + "AIza" + "SyD4" + _ALNUM + "Qw9xE3r", "AIza" + "SyD4" + _ALNUM + "Qw9xE3r"),
        "GitHub token": ("jeton " + "ghp_" + _ALNUM + "aB3dE6gH9jK2", "ghp_" + _ALNUM + "aB3dE6gH9jK2"),
        "GitHub fine-grained": (
            "jeton " + "github_" + "pat_11AB" + _ALNUM + "_x9Y",
            "github_" + "pat_11AB" + _ALNUM + "_x9Y",
        ),
        "GitLab token": ("jeton " + "glpat-" + "x7Kp2Qm9Rt4Vw8Yz1Bc3", "glpat-" + "x7Kp2Qm9Rt4Vw8Yz1Bc3"),
        "Slack bot token": ("jeton " + "xoxb-" + "2468013579-" + _ALNUM, "xoxb-" + "2468013579-" + _ALNUM),
        "Slack webhook": (
            "https://hooks." + "slack.com/services/" + "T0A1B2C3D/B4E5F6G7H/" + _ALNUM,
            "T0A1B2C3D/B4E5F6G7H/" + _ALNUM,
        ),
        "JSON Web Token": ("Cookie: session=" + fake_secrets()["JSON Web Token"], fake_secrets()["JSON Web Token"]),
        "DB_PASSWORD": ("DB_" + "PASSWORD=" + pw, pw),
        "POSTGRES_PASSWORD": ("POSTGRES_" + "PASSWORD: " + pw[::-1], pw[::-1]),
        "password assignment": ("pass" + 'word = "' + pw + 'Q"', pw + "Q"),
        "JSON password": ('{"user": "admin", "pass' + 'word": "' + pw + 'Z"}', pw + "Z"),
        "client_secret": ("client_" + "secret: " + _ALNUM[3:] + "Kq", _ALNUM[3:] + "Kq"),
        "api_key": ("api_" + "key: '" + _ALNUM[:12] + "'", _ALNUM[:12]),
        "URL with password": (
            "postgresql://app:" + pw.replace("&", "x") + "@db.interne:5432/ventes",
            pw.replace("&", "x") + "@db",
        ),
        "Mot de passe": ("Mot de " + "passe : Azerty" + "2024!x", "Azerty" + "2024!x"),
        "Bearer header": ("Authorization: " + "Bearer " + _ALNUM + "Zz99", _ALNUM + "Zz99"),
        "Basic header": ("Authorization: " + "Basic " + "YWRtaW46" + "UzNjcjN0IQ==", "YWRtaW46" + "UzNjcjN0IQ=="),
        "Azure connection string": (
            "DefaultEndpointsProtocol=https;AccountName=stock;Account" + "Key=" + _B64_40 + "Q5==",
            _B64_40 + "Q5==",
        ),
        "SendGrid key": (
            "SG." + "ngeVfQFYQlKU0ufo8x5d1A." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr",
            "SG." + "ngeVfQFYQlKU0ufo8x5d1A",
        ),
        "PyPI token": (
            "pypi-" + "AgEIcHlwaS5vcmc" + _B64_40.replace("/", "_") + _ALNUM + _ALNUM[::-1],
            "pypi-" + "AgEIcHlwaS5vcmc" + _B64_40.replace("/", "_"),
        ),
        "quoted high-entropy string": ('jeton = "' + _B64_40[::2] + _ALNUM + '"', _B64_40[::2] + _ALNUM),
    }
    return formats
