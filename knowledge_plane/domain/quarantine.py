"""Bad input: a specific, machine-readable reason plus a sentence a person can act on."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

# Reason codes, stable because CI scripts and the Dagster metadata show them.
EMPTY_FILE = "empty-file"
TOO_LARGE = "too-large"
BINARY_CONTENT = "binary-content"
INVALID_UTF8 = "invalid-utf8"
INVALID_FRONT_MATTER = "invalid-front-matter"
INVALID_FAQ_JSON = "invalid-faq-json"
CORRUPT_DOCUMENT = "corrupt-document"
NO_TEXT = "no-text"
SECRET_DETECTED = "secret-detected"
PROMPT_INJECTION = "prompt-injection"  # instructions addressed to a language model (knowledge_plane.serving.guards)
PERSONAL_DATA = "personal-data"
SYMLINK = "symlink"
UNSUPPORTED_TYPE = "unsupported-type"
DUPLICATE_DOC_ID = "duplicate-doc-id"
INVALID_SOURCE = "invalid-source"
DELETED_DURING_RUN = "deleted-during-run"
UNSAFE_FILE_NAME = "unsafe-file-name"
METADATA_TOO_LARGE = "metadata-too-large"
TEXT_TOO_LARGE = "text-too-large"
NAMESPACE_NOT_ALLOWED = "namespace-not-allowed"
TRUTH_LEVEL_NOT_ALLOWED = "truth-level-not-allowed"

# Controls (new lines, escape sequences), invisible formatting (bidi overrides and isolates,
# zero-width characters), line and paragraph separators, lone surrogates: in a file name they
# forge lines in logs and CLI output or make a citation read differently from the file it names.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def printable(name: str) -> str:
    """``name`` with every unsafe character written as an escape (``\\n``, ``\\u202e``): safe to show."""
    return "".join(
        ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES
        else ch
        for ch in name
    )


def check_file_name(name: str) -> None:
    """Refuse a file or object name holding unsafe characters (see ``_UNSAFE_CATEGORIES``).

    Refused rather than escaped: the name is the document's identity (doc_id, citations, Git
    paths), and a renamed copy would cite a file that does not exist under that name.
    """
    unsafe = sorted({f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) in _UNSAFE_CATEGORIES})
    if unsafe:
        raise QuarantineError(
            UNSAFE_FILE_NAME,
            f"the name holds control or invisible formatting characters ({', '.join(unsafe)}); rename the file",
        )


class QuarantineError(Exception):
    """Raised by any stage that refuses a document; the build goes on without it."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class QuarantinedFile:
    path: str
    reason: str
    detail: str
    stage: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def message(self) -> str:
        return f"{self.reason}: {self.detail}"
