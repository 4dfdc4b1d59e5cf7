"""Secret scanning before indexing: content regexes for keys, tokens and password assignments."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each pattern is written so that this file's own source does not match it
# (the project's code is indexed as internal:code).
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("private key block", re.compile(r"-----BEGIN ([A-Z]+ )*PRIVATE KEY( BLOCK)?-----")),
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "AWS secret access key",
        re.compile(r"(?i)aws_?secret_?access_?key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
    ),
    ("OpenAI-style API key", re.compile(r"\bsk-(proj-|live-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    (
        "password assignment",
        # A quoted literal, or a bare token of 8+ characters that is not an expression (no call,
        # subscript or attribute follows): "password = x.strip()" in code is not a secret.
        re.compile(
            r"(?i)\b(password|passwd|pwd|mot_de_passe|secret|api_?key|access_?token|auth_?token)\b\s*[=:]\s*"
            r"(?:(['\"])(?![<${*]|x{3,}|\.\.\.)[^\s'\"]{6,}\2|(?![<${*]|x{3,})[A-Za-z0-9!@#%^&*+/_~-]{8,}(?![\w(\[.]))"
        ),
    ),
]


@dataclass(frozen=True)
class SecretFinding:
    kind: str
    line: int

    def describe(self) -> str:
        return f"{self.kind} on line {self.line}"


def find_secrets(text: str) -> list[SecretFinding]:
    """Every secret-looking match, with its line number; never the secret itself."""
    findings = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            findings.append(SecretFinding(kind, text.count("\n", 0, match.start()) + 1))
    return sorted(findings, key=lambda f: (f.line, f.kind))
