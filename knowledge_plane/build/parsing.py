"""Parsing: bytes of one source file → a ParsedDocument, or a QuarantineError with a specific reason.

Docling reads Markdown, HTML, DOCX, PPTX, XLSX and CSV; FAQ JSON and Python are read natively;
PDF goes through Docling when its layout models are available, else through the PDF text layer.
"""

from __future__ import annotations

import ast
import json
import os
from functools import lru_cache
from io import BytesIO
from pathlib import PurePosixPath
from typing import Any

from knowledge_plane.build.frontmatter import split_front_matter, validate_metadata
from knowledge_plane.build.screening import screen_document
from knowledge_plane.build.secrets import Allowlist
from knowledge_plane.domain.documents import CODE_TRUTH_LEVEL, DEFAULT_TRUTH_LEVEL, ParsedDocument, Section
from knowledge_plane.domain.ids import doc_id_from_path
from knowledge_plane.domain.imports import hidden
from knowledge_plane.domain.quarantine import (
    BINARY_CONTENT,
    CORRUPT_DOCUMENT,
    INVALID_FAQ_JSON,
    INVALID_FRONT_MATTER,
    INVALID_UTF8,
    NO_TEXT,
    UNSUPPORTED_TYPE,
    QuarantineError,
)

PARSER_VERSION = "parse-2"
DOCLING_SUFFIXES = {
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
}
TEXT_SUFFIXES = {".md", ".markdown", ".html", ".htm", ".csv", ".json", ".py", ".txt"}
SUPPORTED_SUFFIXES = set(DOCLING_SUFFIXES) | {".json", ".py", ".txt", ".pdf"}


def decode_text(data: bytes, source_path: str) -> str:
    """Strict UTF-8; NUL bytes or a run of control characters mean a binary file under a text name."""
    head = data[:8192]
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if b"\x00" in head or controls > len(head) * 0.05:
        raise QuarantineError(
            BINARY_CONTENT, f"binary bytes under a text file name ({PurePosixPath(source_path).suffix})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuarantineError(INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}") from exc
    return text.lstrip("\ufeff")


def load_sidecar(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QuarantineError(INVALID_FRONT_MATTER, f"metadata sidecar is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise QuarantineError(INVALID_FRONT_MATTER, "metadata sidecar must be a JSON object")
    return validate_metadata(meta)


def parse_document(
    data: bytes,
    *,
    namespace: str,
    source_path: str,
    content_hash: str,
    sidecar: bytes | None = None,
    upload_meta: dict[str, Any] | None = None,
    docling_artifacts_path: str | None = None,
    allowlist: Allowlist | None = None,
) -> ParsedDocument:
    """Parse one file; raises QuarantineError for any input the index must not receive.

    ``upload_meta`` (title, tags, language given with an upload) wins over the file's own metadata.
    The parsed document is screened (``knowledge_plane.build.screening``) with the corpus' ``allowlist``.
    """
    suffix = PurePosixPath(source_path).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise QuarantineError(UNSUPPORTED_TYPE, f"no parser for '{suffix or 'no extension'}' files")
    meta = load_sidecar(sidecar)
    text: str | None = None
    if suffix in TEXT_SUFFIXES:
        text = decode_text(data, source_path)
        if not text.strip():
            raise QuarantineError(NO_TEXT, "the file holds only white space")
    if suffix in (".md", ".markdown"):
        front, body = split_front_matter(text)
        meta = {**meta, **front}
        (title, sections), parser = _docling_sections(body.encode("utf-8"), "doc.md"), "docling"
    elif suffix == ".json":
        title, sections, meta, parser = _faq_sections(text, meta)
    elif suffix == ".py":
        (title, sections), parser = _python_sections(text, source_path), "python-ast"
    elif suffix == ".txt":
        paragraphs = [p.strip() for p in text.split("\n\n")]
        title, sections, parser = (
            None,
            [Section([], p, f"¶{i + 1}") for i, p in enumerate(paragraphs) if p],
            "plain-text",
        )
    elif suffix == ".pdf":
        title, sections, parser = _pdf_sections(data, docling_artifacts_path)
    else:
        (title, sections), parser = _docling_sections(data, PurePosixPath(source_path).name), "docling"
    if upload_meta:
        meta = {**meta, **{k: v for k, v in upload_meta.items() if k in ("title", "tags")}}
        if upload_meta.get("language"):
            meta["lang"] = upload_meta["language"]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise QuarantineError(NO_TEXT, "the document has no extractable text")
    is_code = suffix == ".py"
    title = str(meta.get("title") or title or PurePosixPath(source_path).stem)
    doc = ParsedDocument(
        doc_id=str(meta.get("id") or doc_id_from_path(source_path)),
        doc_version=str(meta.get("version") or content_hash[:12]),
        title=title,
        namespace=namespace,
        source_path=source_path,
        content_hash=content_hash,
        truth_level=str(meta.get("truth_level") or (CODE_TRUTH_LEVEL if is_code else DEFAULT_TRUTH_LEVEL)),
        lang=str(meta.get("lang") or ("en" if is_code else "fr")),
        updated=meta.get("updated"),
        parser=parser,
        sections=sections,
        meta=meta,
        parser_note="PDF text layer (DOCLING_ARTIFACTS_PATH unset: no layout models)"
        if parser == "pdf-text-layer"
        else "",
    )
    doc.allowed_findings = screen_document(doc, raw_text=text, upload_meta=upload_meta, allowlist=allowlist)
    return doc


# Docling is imported without these (see knowledge_plane.domain.imports): it imports transformers for a
# type annotation of its vision-language options and torch to look for Apple's GPU for its speech model,
# ~1.8 s and hundreds of MB that no format of ours needs (the PDF layout models import torch themselves).
_NOT_FOR_DOCLING = ("transformers", "torch")


@lru_cache(maxsize=1)
def _declarative_backends() -> dict[str, tuple[Any, Any]]:
    """Suffix → (Docling input format, its backend) for the formats Docling converts without a model.

    These are the backends Docling's ``DocumentConverter`` picks by default, called the way its
    ``SimplePipeline`` calls them; going through the converter itself would import its speech and
    vision pipelines, hence torch, whatever the document. Imported only when a document needs them.
    """
    with hidden(*_NOT_FOR_DOCLING):
        from docling.backend.csv_backend import CsvDocumentBackend
        from docling.backend.html_backend import HTMLDocumentBackend
        from docling.backend.md_backend import MarkdownDocumentBackend
        from docling.backend.msexcel_backend import MsExcelDocumentBackend
        from docling.backend.mspowerpoint_backend import MsPowerpointDocumentBackend
        from docling.backend.msword_backend import MsWordDocumentBackend
        from docling.datamodel.base_models import InputFormat

    return {
        ".md": (InputFormat.MD, MarkdownDocumentBackend),
        ".html": (InputFormat.HTML, HTMLDocumentBackend),
        ".htm": (InputFormat.HTML, HTMLDocumentBackend),
        ".docx": (InputFormat.DOCX, MsWordDocumentBackend),
        ".pptx": (InputFormat.PPTX, MsPowerpointDocumentBackend),
        ".xlsx": (InputFormat.XLSX, MsExcelDocumentBackend),
        ".csv": (InputFormat.CSV, CsvDocumentBackend),
    }


def _convert(data: bytes, name: str) -> Any:
    """The DoclingDocument of a Markdown, HTML, Office or CSV file."""
    with hidden(*_NOT_FOR_DOCLING):
        from docling.datamodel.document import InputDocument

    input_format, backend = _declarative_backends()[PurePosixPath(name).suffix.lower()]
    document = InputDocument(path_or_stream=BytesIO(data), format=input_format, backend=backend, filename=name)
    if not document.valid or not document._backend.is_valid():
        rejection = getattr(document, "_rejection", None)
        raise ValueError(rejection.message if rejection is not None else "the backend refused the file")
    try:
        return document._backend.convert()
    finally:
        document._backend.unload()


def _docling_sections(data: bytes, name: str, converter: Any = None) -> tuple[str | None, list[Section]]:
    with hidden(*_NOT_FOR_DOCLING):
        from docling.datamodel.base_models import DocumentStream
        from docling_core.types.doc import ListItem, SectionHeaderItem, TableItem, TextItem, TitleItem

    try:
        if converter is None:
            doc = _convert(data, name)
        else:
            doc = converter.convert(DocumentStream(name=name, stream=BytesIO(data)), raises_on_error=True).document
    except Exception as exc:  # Docling raises many types for corrupt or truncated files
        raise QuarantineError(CORRUPT_DOCUMENT, f"Docling could not read {name}: {str(exc)[:200]}") from exc
    title: str | None = None
    headings: list[tuple[int, str]] = []
    sections: list[Section] = []
    blocks: list[str] = []

    def flush() -> None:
        if blocks:
            path = [h for _, h in headings]
            sections.append(Section(path, "\n\n".join(blocks), "§ " + " > ".join(path) if path else "§ début"))
            blocks.clear()

    for item, _level in doc.iterate_items():
        if isinstance(item, TitleItem):
            flush()
            title = title or item.text.strip()
            headings = []
        elif isinstance(item, SectionHeaderItem):
            flush()
            headings = [(lvl, h) for lvl, h in headings if lvl < item.level] + [(item.level, item.text.strip())]
        elif isinstance(item, TableItem):
            table = item.export_to_markdown(doc=doc).strip()
            if table:
                flush()
                path = [h for _, h in headings]
                sections.append(Section(path, table, "§ " + " > ".join(path) if path else "§ tableau", "table"))
        elif isinstance(item, ListItem) and item.text.strip():
            blocks.append(f"- {item.text.strip()}")
        elif isinstance(item, TextItem) and item.text.strip():
            blocks.append(item.text.strip())
    flush()
    return title, sections


def _faq_sections(text: str, meta: dict[str, Any]) -> tuple[str | None, list[Section], dict[str, Any], str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuarantineError(INVALID_FAQ_JSON, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(data, dict):
        items = data.get("items")
        file_meta = {k: v for k, v in data.items() if k != "items"}
        try:
            meta = {**meta, **validate_metadata(file_meta)}
        except QuarantineError as exc:
            raise QuarantineError(INVALID_FAQ_JSON, exc.detail) from exc
    else:
        items = data
    if not isinstance(items, list) or not items:
        raise QuarantineError(INVALID_FAQ_JSON, "expected a non-empty 'items' list of {question, answer}")
    sections = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise QuarantineError(INVALID_FAQ_JSON, f"items[{i}] is not an object")
        question, answer = item.get("question"), item.get("answer")
        if not (isinstance(question, str) and question.strip() and isinstance(answer, str) and answer.strip()):
            raise QuarantineError(INVALID_FAQ_JSON, f"items[{i}] needs a non-empty 'question' and 'answer'")
        sections.append(Section([question.strip()], f"Q : {question.strip()}\nR : {answer.strip()}", f"Q{i + 1}", "qa"))
    return (
        (str(data.get("title")) if isinstance(data, dict) and data.get("title") else None),
        sections,
        meta,
        "faq-json",
    )


def _python_sections(text: str, source_path: str) -> tuple[str, list[Section]]:
    try:
        tree = ast.parse(text, filename=source_path)
    except SyntaxError as exc:
        raise QuarantineError(CORRUPT_DOCUMENT, f"Python syntax error at line {exc.lineno}: {exc.msg}") from exc
    lines = text.splitlines()
    module = source_path.removesuffix(".py").replace("/", ".")
    sections: list[Section] = []
    docstring = ast.get_docstring(tree)
    if docstring:
        sections.append(Section([module], f"Module {module}\n{docstring}", "module docstring", "code"))

    def add(node: ast.AST, qualname: str, end: int | None = None) -> None:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        stop = end or node.end_lineno or node.lineno
        body = "\n".join(lines[start - 1 : stop]).rstrip()
        sections.append(Section([module, qualname], body, f"lines {start}-{stop}", "code"))

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(node, node.name)
        elif isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            first = min([methods[0].lineno] + [d.lineno for d in methods[0].decorator_list]) if methods else None
            add(node, node.name, end=(first - 1) if first else None)
            for method in methods:
                add(method, f"{node.name}.{method.name}")
    return module, sections


def _pdf_sections(data: bytes, docling_artifacts_path: str | None) -> tuple[str | None, list[Section], str]:
    if docling_artifacts_path:
        return (*_docling_pdf_sections(data, docling_artifacts_path), "docling-pdf")
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
        pages = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    except Exception as exc:  # pdfium reports damage with PdfiumError and friends
        raise QuarantineError(CORRUPT_DOCUMENT, f"the PDF could not be read: {str(exc)[:200]}") from exc
    sections = [Section([], text.replace("\r\n", "\n").strip(), f"page {i + 1}") for i, text in enumerate(pages)]
    if not any(s.text for s in sections):
        raise QuarantineError(NO_TEXT, "the PDF has no text layer (scanned?) and no OCR models are configured")
    return None, sections, "pdf-text-layer"


def _docling_pdf_sections(data: bytes, artifacts_path: str) -> tuple[str | None, list[Section]]:
    with hidden(*_NOT_FOR_DOCLING):
        from docling.datamodel.base_models import InputFormat
        from docling.datamodel.pipeline_options import PdfPipelineOptions
        from docling.document_converter import DocumentConverter, PdfFormatOption

    if not os.path.isdir(artifacts_path):
        raise RuntimeError(f"DOCLING_ARTIFACTS_PATH={artifacts_path!r} is not a directory")
    options = PdfPipelineOptions(artifacts_path=artifacts_path)
    converter = DocumentConverter(format_options={InputFormat.PDF: PdfFormatOption(pipeline_options=options)})
    return _docling_sections(data, "doc.pdf", converter)
