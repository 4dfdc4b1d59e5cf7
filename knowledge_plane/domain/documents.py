"""The parsed-document model shared by parsing, chunking, facts and the index payloads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TRUTH_LEVELS = ("L1", "L2", "L3", "L4")  # L1 most trusted
DEFAULT_TRUTH_LEVEL = "L3"  # a document that does not say how far it can be trusted is unverified
CODE_TRUTH_LEVEL = "L2"
LANGUAGES = ("en", "fr")  # the languages the lexical analysis has stop words for (domain/lexical.py)


@dataclass
class Section:
    """A unit of structure: prose under its heading path, one Q/A pair, or one code symbol."""

    heading_path: list[str]
    text: str
    location: str
    kind: str = "prose"  # prose | qa | code | table


@dataclass
class ParsedDocument:
    doc_id: str
    doc_version: str
    title: str
    namespace: str
    source_path: str
    content_hash: str
    truth_level: str
    lang: str
    updated: str | None
    parser: str
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)
    parser_note: str = ""
    # Fingerprints of the reviewed findings (allowlist, inline marker) the document was let through
    # with: the chunk-level no_secrets check honours the same ones.
    allowed_findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsedDocument:
        data = dict(data)
        data["sections"] = [Section(**s) for s in data["sections"]]
        return cls(**data)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)
