"""Bad input: a specific, machine-readable reason plus a sentence a person can act on."""

from __future__ import annotations

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
PERSONAL_DATA = "personal-data"
SYMLINK = "symlink"
UNSUPPORTED_TYPE = "unsupported-type"
DUPLICATE_DOC_ID = "duplicate-doc-id"
INVALID_SOURCE = "invalid-source"
DELETED_DURING_RUN = "deleted-during-run"


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
