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
