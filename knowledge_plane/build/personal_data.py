"""Personal data that must stay out of the customer-facing ``knowledge:*`` namespaces.

Four kinds: e-mail addresses, phone numbers (``phonenumbers``, French numbering by default),
IBANs (checksum by ``python-stdnum``) and payment card numbers (Luhn, by ``python-stdnum``).

Documentation names people for good reasons — an author, a maintainer, the support line — so the
rule depends on where the value sits:

- in data (a CSV or XLSX file, a JSON file, any table), one personal value is enough;
- in prose, an IBAN or a card number is enough, but e-mail addresses and phone numbers count only
  in bulk: ``BULK`` distinct ones in one section (a customer list pasted into a page), since a
  chapter on mail servers quotes a handful of example addresses per section.

Addresses of a role (``support@``, ``contact@``, ``noreply@``…), of example and non-public domains
(``example.com``, ``.test``, ``.invalid``, ``hostname.domain.ext``), of mailing lists and bug
trackers (``lists.…``, ``bugs.…``, ``12345@bugs…``) are never personal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

from knowledge_plane.build.secrets import SecretFinding, fingerprint

BULK = 5
DEFAULT_REGION = "FR"
EMAIL = "e-mail address"
PHONE = "phone number"
IBAN = "IBAN"
CARD = "payment card number"

_EMAIL_RE = re.compile(r"(?<![\w.%+-])([A-Za-z0-9._%+-]+)@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
_ROLE_MAILBOXES = {
    "abuse", "admin", "billing", "bonjour", "commercial", "compta", "contact", "dpo", "facturation", "hello",
    "help", "info", "infos", "jobs", "list", "mailer-daemon", "marketing", "newsletter", "no-reply", "noreply",
    "notifications", "owner", "postmaster", "presse", "press", "privacy", "rgpd", "root", "sales", "sav",
    "security", "service", "service-client", "serviceclient", "support", "team", "webmaster",
}  # fmt: skip
# Example and non-public domains (RFC 2606, placeholders such as hostname.domain.ext), and the hosts
# of mailing lists and bug trackers, whose addresses are not a person's.
_NOT_A_PERSON_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost|local|localdomain|lan|internal|home|corp"
    r"|dom|domain|ext|tld)$|^(?:lists?|bugs)\.",
    re.IGNORECASE,
)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD_RE = re.compile(r"(?<![\d.,-])(?:\d[ -]?){12,18}\d(?![\d.,-])")
_PHONE_HINT = re.compile(r"\d(?:[\s().-]?\d){7}")
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5)")


@dataclass(frozen=True)
class _Value:
    kind: str
    line: int
    value: str


def _values(text: str) -> list[_Value]:
    found: list[_Value] = []

    def line_of(position: int) -> int:
        return text.count("\n", 0, position) + 1

    for match in _EMAIL_RE.finditer(text):
        local, domain = match.group(1).lower(), match.group(2)
        mailbox = local.split("+", 1)[0]
        if mailbox not in _ROLE_MAILBOXES and not mailbox.isdigit() and not _NOT_A_PERSON_DOMAIN.search(domain):
            found.append(_Value(EMAIL, line_of(match.start()), match.group(0).lower()))
    for match in _IBAN_RE.finditer(text):
        if iban.is_valid(match.group(0)):
            found.append(_Value(IBAN, line_of(match.start()), iban.compact(match.group(0))))
    for match in _CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and len(set(digits)) > 2 and luhn.is_valid(digits):
            found.append(_Value(CARD, line_of(match.start()), digits))
    # phonenumbers' matcher is slow on long prose: it only reads the lines that hold a run of digits.
    for number, line in enumerate(text.splitlines(), start=1):
        if _PHONE_HINT.search(line):
            for match in phonenumbers.PhoneNumberMatcher(line, DEFAULT_REGION, leniency=phonenumbers.Leniency.VALID):
                e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                found.append(_Value(PHONE, number, e164))
    return found


def find_personal_data(parts: list[tuple[str, str, bool]]) -> list[SecretFinding]:
    """Personal data of one document, given its parts as (where, text, is_data) triples."""
    findings: list[SecretFinding] = []
    for where, text, is_data in parts:
        in_prose: dict[str, dict[str, SecretFinding]] = {EMAIL: {}, PHONE: {}}
        for value in _values(text):
            finding = SecretFinding(value.kind, value.line, fingerprint(value.value), where)
            if is_data or value.kind in (IBAN, CARD):
                findings.append(finding)
            else:
                in_prose[value.kind].setdefault(value.value, finding)
        for found in in_prose.values():
            if len(found) >= BULK:
                findings.extend(found.values())
    return findings
