"""Secret scanning before indexing: detect-secrets' detectors plus our own content patterns.

``find_secrets`` runs every detect-secrets plugin that finds credentials (keyword, entropy and the
vendor token detectors; not ``IPPublicDetector``: an address is not a secret) with its heuristic
filters, and our patterns for the formats it does not know (``DB_PASSWORD=…``, ``Mot de passe :``,
connection URLs, ``Authorization:`` headers, Google, Stripe restricted and fine-grained GitHub keys…).
A finding carries a kind, a line and a fingerprint (the SHA-1 of the value, detect-secrets'
``hashed_secret``) — never the secret.

A reviewed finding is let through by an inline marker on its line (``pragma: allowlist secret``,
or ``pragma: allowlist nextline secret`` on the line above, as detect-secrets spells them) or by
the corpus' baseline, ``<corpus>/.secrets.baseline``: detect-secrets' baseline layout,
``{"results": {"<source path>": [{"type": …, "hashed_secret": …}]}}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

ALLOWLIST_FILE = ".secrets.baseline"
INLINE_MARKER = "pragma: allowlist secret"
NEXTLINE_MARKER = "pragma: allowlist nextline secret"

# Names that hold a secret, alone or at the end of a longer name joined by "_" (DB_PASSWORD,
# client_secret, STRIPE_SECRET_KEY): "secretary" and SECRET_DETECTED are not such names.
_SECRET_NAME = (
    r"(?:[A-Za-z0-9]+_)*(?i:password|passwd|passphrase|pwd|mot_de_passe|secret|api_?key|access_?token"
    r"|auth_?token|private_?key|client_?secret|secret_?key)(?![A-Za-z0-9_])"
)
# A value that is a literal, not a placeholder ("<…>", "${…}", "xxx", "…", "*****").
_NOT_PLACEHOLDER = r"(?![<${*%]|x{3,}|X{3,}|\.\.\.|…)"

# Each pattern is written so that this file's own source does not match it (the project's code is
# indexed as internal:code); the value is group "value", which the fingerprint hashes. A name and
# its value are on one line ([ \t], never \s): a name that ends a line is not followed by a value.
# With each pattern, words one of which the text must hold (lowercase): a substring test is far
# cheaper than a regex pass, and most pages hold none of them.
_PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    (
        "private key block",
        ("private key",),
        re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<value>[^-]*)"),
    ),
    ("AWS access key id", ("akia", "asia"), re.compile(r"\b(?P<value>(?:AKIA|ASIA)[0-9A-Z]{16})\b")),
    (
        "AWS secret access key",
        ("secret",),
        re.compile(
            r"(?i)aws_?secret_?access_?key['\"]?[ \t]*[=:,][ \t]*['\"]?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
    ),
    ("OpenAI-style API key", ("sk-",), re.compile(r"\b(?P<value>sk-(?:proj-|live-|ant-)?[A-Za-z0-9_-]{20,})")),
    ("Stripe key", ("k_live_", "k_test_"), re.compile(r"\b(?P<value>[rs]k_(?:live|test)_[0-9A-Za-z]{16,})")),
    ("Google API key", ("aiza",), re.compile(r"\b(?P<value>AIza[0-9A-Za-z_-]{35})")),
    ("GitHub token", ("gh",), re.compile(r"\b(?P<value>gh[pousr]_[A-Za-z0-9]{36,})\b")),
    ("GitHub fine-grained token", ("github_pat_",), re.compile(r"\b(?P<value>github_pat_[A-Za-z0-9_]{22,})")),
    ("Slack token", ("xox",), re.compile(r"\b(?P<value>xox[abprs]-[A-Za-z0-9-]{10,})")),
    ("Slack webhook", ("hooks.slack.com",), re.compile(r"(?P<value>https://hooks\.slack\.com/services/T\w+/B\w+/\w+)")),
    (
        "JSON Web Token",
        ("eyj",),
        re.compile(r"\b(?P<value>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"),
    ),
    (
        "Azure connection string key",
        ("accountkey", "sharedaccess"),
        re.compile(
            r"(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)[ \t]*=[ \t]*(?P<value>[A-Za-z0-9+/=%]{20,})"
        ),
    ),
    (
        "password in a URL",
        ("://",),
        # A password between "user:" and "@host" in a URL; not the placeholder words of examples.
        re.compile(
            r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"<>]+:"
            r"(?!(?i:password|passwd|pass|pwd|secret|motdepasse)@)" + _NOT_PLACEHOLDER + r"(?P<value>[^\s@/'\"<>]{4,})@"
        ),
    ),
    (
        "authorization header",
        ("authorization",),
        re.compile(
            r"(?i)\bauthorization['\"]?[ \t]*[:=][ \t]*['\"]?(?:bearer|basic|token|bot)[ \t]+"
            + _NOT_PLACEHOLDER
            + r"(?P<value>[A-Za-z0-9._~+/=-]{12,})"
        ),
    ),
    (
        "bearer token",
        ("bearer",),
        re.compile(r"\bBearer\s+(?P<value>(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{20,}=*)"),
    ),
    (
        "password assignment",
        ("pass", "pwd", "secret", "key", "token"),
        # A quoted literal, or a bare token of 8+ characters that is not an expression (no call,
        # subscript or attribute follows): "password = x.strip()" in code is not a secret.
        re.compile(
            r"(?<![A-Za-z0-9])" + _SECRET_NAME + r"['\"]?[ \t]*[=:][ \t]*"
            r"(?:(['\"])" + _NOT_PLACEHOLDER + r"(?P<value>[^\s'\"]{6,})\1"
            r"|" + _NOT_PLACEHOLDER + r"(?P<bare>[A-Za-z0-9!@#%^&*+/_~-]{8,})(?![\w(\[.]))"
        ),
    ),
    (
        "password (mot de passe)",
        ("mot de passe",),
        # French prose ("mot de passe" then a colon and the value): the value must hold a digit or
        # a symbol, so an instruction in words after the colon is not a secret.
        re.compile(
            r"(?i)\bmot de passe[ \t]*(?:[:=]|est)[ \t]*" + _NOT_PLACEHOLDER + r"['\"«]?[ \t]*"
            r"(?P<value>(?=\S*[\d!@#$%^&*+=?_])[^\s'\"»]{6,})"
        ),
    ),
]
# detect-secrets plugins that only look at the lines holding a secret-ish word: the vendor plugins
# whose regexes need one anyway (and are slow on a whole page), and the hex entropy detector, since
# a quoted hex string in documentation is a checksum or a commit far more often than a key.
_GATED_PLUGINS = {
    "KeywordDetector",
    "CloudantDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "SoftlayerDetector",
    "HexHighEntropyString",
}
_GATE = re.compile(r"(?i)key|pw|pass|token|secret|auth|credential|contrase|cloudant|softlayer")
_LEFT_OUT_PLUGINS = {"IPPublicDetector"}
# Values that name the secret instead of being one: documentation writes "user:password@host".
_PLACEHOLDER_VALUES = {"password", "passwd", "pass", "pwd", "secret", "motdepasse", "token", "apikey", "api_key"}
# Values that are names, not secrets: an environment variable (KNOWLEDGE_API_KEYS), a kebab-case
# code (secret-detected), a sentence of three words or more.
_NAME_LIKE = re.compile(r"\s*(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[a-z]+(?:-[a-z]+)+|\S+(?:\s+\S+){2,})\s*")
# In prose an entropy finding counts only as the value of a name ("x = '…'", '"x": "…"'): a quoted
# value standing alone is example output — a digest, a generated token — far more often than a key.
_ASSIGNED = re.compile(r"[\w\]'\")][ \t]*(?::=|=>|[:=])[ \t]*[bBrRuU]?[ \t]*['\"]?$")
# Entropy limits. detect-secrets' defaults (Base64 4.5, hex 3.0) flag the checksums and object ids
# that documentation quotes (a Git commit, a SHA-1 in an example): a hex string is flagged only
# above 3.5 bits per character, 32 characters and beside a secret-ish word (see _GATED_PLUGINS),
# a Base64 one above 4.5 bits per character and 20 characters.
BASE64_LIMIT = 4.5
HEX_LIMIT = 3.5
MIN_ENTROPY_LENGTH = {"Base64 High Entropy String": 20, "Hex High Entropy String": 32}


@dataclass(frozen=True)
class SecretFinding:
    """One suspicious value: what it looks like, where, and its fingerprint (never the value)."""

    kind: str
    line: int
    fingerprint: str = ""
    where: str = ""

    def describe(self) -> str:
        place = f" in {self.where}," if self.where else ""
        return f"{self.kind}{place} line {self.line}"


def fingerprint(value: str) -> str:
    """detect-secrets' ``hashed_secret``: the SHA-1 of the value, so baselines are interchangeable."""
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


@lru_cache(maxsize=1)
def scanner_identity() -> str:
    """What a scan's result depends on: this module's rules and detect-secrets' version. Part of the key
    of every cached scan result, so a new pattern or a new detect-secrets re-scans everything."""
    from importlib.metadata import version

    rules = Path(__file__).read_bytes() + version("detect-secrets").encode()
    return hashlib.sha256(rules).hexdigest()[:16]


@lru_cache(maxsize=1)
def _plugins() -> tuple[Any, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString

    plugins: list[Any] = [Base64HighEntropyString(limit=BASE64_LIMIT), HexHighEntropyString(limit=HEX_LIMIT)]
    for plugin_type in get_mapping_from_secret_type_to_class().values():
        name = plugin_type.__name__
        if name not in _LEFT_OUT_PLUGINS and name not in ("Base64HighEntropyString", "HexHighEntropyString"):
            plugins.append(plugin_type())
    return tuple(plugins)


def _filtered(plugin: Any, secret: str, line: str) -> bool:
    """detect-secrets' own heuristic filters (what its default scan applies to a candidate), then
    ours: too short for its entropy detector, a placeholder word, a name rather than a value."""
    from detect_secrets.filters import heuristic

    return (
        heuristic.is_sequential_string(secret)
        or heuristic.is_potential_uuid(secret)
        or heuristic.is_likely_id_string(secret, line, plugin)
        or heuristic.is_templated_secret(secret)
        or heuristic.is_prefixed_with_dollar_sign(secret)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_not_alphanumeric_string(secret)
        or len(secret) < MIN_ENTROPY_LENGTH.get(plugin.secret_type, 0)
        or secret.lower() in _PLACEHOLDER_VALUES
        or bool(_NAME_LIKE.fullmatch(secret))
    )


def _allowed_inline(lines: list[str], index: int) -> bool:
    return INLINE_MARKER in lines[index] or (index > 0 and NEXTLINE_MARKER in lines[index - 1])


def _scan(text: str, filename: str, data_like: bool) -> list[tuple[SecretFinding, bool]]:
    """Every finding with whether its line carries the inline marker."""
    lines = text.splitlines() or [""]
    starts = list(accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    found: dict[tuple[str, int, str], bool] = {}

    def add(kind: str, index: int, value: str) -> None:
        found[(kind, index + 1, fingerprint(value))] = _allowed_inline(lines, index)

    def lines_holding(values: set[str]) -> set[int]:
        held = set()
        for value in values:
            position = text.find(value)
            while position >= 0:
                held.add(bisect_right(starts, position) - 1)
                position = text.find(value, position + 1)
        return held

    lowered = text.lower()
    for kind, hints, pattern in _PATTERNS:
        if not any(hint in lowered for hint in hints):
            continue
        for match in pattern.finditer(text):
            value = match.group("value") or (match.groupdict().get("bare") or match.group(0))
            if value.lower() not in _PLACEHOLDER_VALUES:
                add(kind, bisect_right(starts, match.start()) - 1, value)
    gated_text = "\n".join(line for line in lines if _GATE.search(line))
    for plugin in _plugins():
        entropy = isinstance(plugin, HighEntropyStringsPlugin)
        # Eager search reads unquoted values too: for data files (a CSV cell holding a key), never
        # prose, where every long word would be a candidate.
        eager = data_like and entropy
        # A whole-text pass first: most pages hold no candidate at all, and one regex pass over the
        # text is far cheaper than one call per line.
        with plugin.non_quoted_string_regex(is_exact_match=False) if eager else nullcontext():
            values = set(plugin.analyze_string(gated_text if type(plugin).__name__ in _GATED_PLUGINS else text))
        if entropy:
            least = MIN_ENTROPY_LENGTH[plugin.secret_type]
            values = {
                v for v in values if len(v) >= least and plugin.calculate_shannon_entropy(v) > plugin.entropy_limit
            }
        for index in sorted(lines_holding(values)):
            line = lines[index]
            kwargs = {"enable_eager_search": True} if eager else {}
            for secret in plugin.analyze_line(filename=filename, line=line, line_number=index + 1, **kwargs):
                value = str(secret.secret_value)
                if entropy and not eager and not _ASSIGNED.search(line[: max(line.find(value), 0)]):
                    continue
                if not _filtered(plugin, value, line):
                    add(plugin.secret_type, index, value)
    return [(SecretFinding(kind, line, digest), allowed) for (kind, line, digest), allowed in found.items()]


def scan_parts(
    parts: list[tuple[str, str]], *, filename: str = "doc.txt", data_like: bool = False
) -> tuple[list[SecretFinding], set[str]]:
    """(findings, fingerprints marked inline as reviewed) of many (where, text) parts in one pass;
    each finding says in which part and on which of its lines."""
    text = "\n".join(part for _, part in parts)
    firsts = list(accumulate((part.count("\n") + 1 for _, part in parts[:-1]), initial=1))
    findings: list[SecretFinding] = []
    allowed: set[str] = set()
    for finding, inline in _scan(text, _keyword_filename(filename), data_like):
        if inline:
            allowed.add(finding.fingerprint)
            continue
        index = bisect_right(firsts, finding.line) - 1
        where = parts[index][0] if parts else ""
        findings.append(SecretFinding(finding.kind, finding.line - firsts[index] + 1, finding.fingerprint, where))
    return sorted(findings, key=lambda f: (f.where, f.line, f.kind)), allowed


def find_secrets(text: str, *, filename: str = "doc.txt", data_like: bool = False) -> list[SecretFinding]:
    """Every secret-looking value of ``text`` not marked inline as reviewed, sorted by line.

    ``filename`` picks detect-secrets' keyword rules for the file type (quotes required in code,
    bare values in configuration and prose); ``data_like`` lets the entropy detectors read unquoted
    cells (CSV).
    """
    return scan_parts([("", text)], filename=filename, data_like=data_like)[0]


def _keyword_filename(filename: str) -> str:
    # detect-secrets reads "password: hunter2" without quotes only in configuration files; in our
    # prose formats a bare value after a keyword is as much a leak as in a .env file.
    return filename if filename.endswith(".py") else "doc.yaml"


@dataclass(frozen=True)
class Allowlist:
    """Reviewed findings per source path, read from the corpus' ``.secrets.baseline``."""

    entries: dict[str, frozenset[str]]
    location: str = ALLOWLIST_FILE

    @classmethod
    def load(cls, corpus_dir: Path) -> Allowlist:
        path = corpus_dir / ALLOWLIST_FILE
        if not path.is_file() or path.is_symlink():
            return cls({}, str(path))
        try:
            results = json.loads(path.read_text(encoding="utf-8")).get("results", {})
            entries = {
                str(source): frozenset(str(e["hashed_secret"]) for e in found if isinstance(e, dict))
                for source, found in results.items()
            }
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise ValueError(f"{path} is not a detect-secrets baseline: {exc}") from exc
        return cls(entries, str(path))

    def for_path(self, source_path: str) -> frozenset[str]:
        return self.entries.get(source_path, frozenset())

    def how_to_allow(self, source_path: str, findings: list[SecretFinding]) -> str:
        """The sentence a quarantine ends with: the marker, or the baseline entries to paste (one per
        value: two detectors may match one secret differently)."""
        entries = {f.fingerprint: {"type": f.kind, "hashed_secret": f.fingerprint} for f in findings}
        pasted = ", ".join(json.dumps(e) for e in entries.values())
        return (
            f"if it is a reviewed example, end its line with '{INLINE_MARKER}' or add {pasted} "
            f'under "{source_path}" in the "results" of {self.location}'
        )
