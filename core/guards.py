"""Input guards of the query service: prompt-injection patterns and personal data.

Injection patterns are flagged (the service logs them) and cut out of the text that is searched,
so a question wrapped in "ignore previous instructions…" still finds its passages but the
instruction never reaches a prompt built from them. Personal data is never searched at all: the
caller is sent to the authenticated account area, where the customer's own data lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = re.IGNORECASE
_APOS = "['’ʼ]"  # typewriter and typographic apostrophes

# (name, pattern): English and French forms of the usual prompt-injection moves.
INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ignore_instructions", re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.?!\n]{0,40}?"
        r"\b(?:instructions?|prompts?|rules|directives?|guidelines|guardrails)\b", _I)),
    ("ignore_instructions_fr", re.compile(
        r"\b(?:ignor(?:e|es|ez|er)|oubli(?:e|es|ez|er)|ne\s+tiens?\s+pas\s+compte|"
        r"ne\s+tenez\s+pas\s+compte|outrepass(?:e|ez|er)|contourn(?:e|ez|er)|fais\s+abstraction)\b[^.?!\n]{0,50}?"
        r"\b(?:instructions?|consignes?|r[eè]gles?|directives?|prompts?|restrictions?)\b", _I)),
    ("system_prompt", re.compile(
        r"\b(?:system\s*prompt|system\s+message|initial\s+prompt|hidden\s+prompt|prompt\s+syst[eè]me|"
        r"invite\s+syst[eè]me|message\s+syst[eè]me|instructions?\s+syst[eè]me|instructions?\s+cach[ée]es?|"
        r"(?:ton|votre|your)\s+prompt)\b", _I)),
    ("reveal_configuration", re.compile(
        r"\b(?:reveal|print|show|repeat|dump|leak|r[ée]v[eè]l(?:e|ez|er)|affich(?:e|ez|er)|r[ée]p[eè]t(?:e|ez|er)|"
        r"montr(?:e|ez|er)|donn(?:e|ez)[- ]moi)\b[^.?!\n]{0,30}?"
        r"\b(?:instructions|prompt|configuration|api[\s_-]*keys?|cl[ée]s?\s+(?:d" + _APOS + r"\s*)?api|"
        r"mots?\s+de\s+passe|passwords?|secrets?|tokens?)\b", _I)),
    ("chat_template", re.compile(
        r"(?:\[/?INST\]|<<\s*/?SYS\s*>>|<\|[^|<>\s]{1,32}\|>|</?\s*(?:system|assistant|user|instructions?)\s*>)"
        r"(?:\s*(?:system|assistant|user)\b)?", _I)),
    ("template_expression", re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\$\{[^}]{0,200}\}", re.DOTALL)),
    ("role_override", re.compile(
        r"\b(?:you\s+are\s+now|from\s+now\s+on\s+you|act\s+as|pretend\s+(?:to\s+be|you\s+are)|roleplay\s+as|"
        r"tu\s+es\s+(?:maintenant|d[ée]sormais)|vous\s+[êe]tes\s+(?:maintenant|d[ée]sormais)|"
        r"[àa]\s+partir\s+de\s+maintenant,?\s+tu|agis(?:sez)?\s+comme|fais\s+comme\s+si|"
        r"jou(?:e|ez)\s+le\s+r[ôo]le)\b", _I)),
    ("jailbreak", re.compile(
        r"\b(?:jailbreak|DAN\s+mode|do\s+anything\s+now|developer\s+mode|god\s+mode|mode\s+d[ée]veloppeur|"
        r"sans\s+aucune\s+(?:restriction|censure)|without\s+any\s+(?:restrictions?|filters?))\b", _I)),
    ("role_prefix", re.compile(r"(?im)^\s*(?:#{1,6}\s*)?(?:system|assistant|syst[eè]me)\s*:")),
)

# (kind, pattern): personal data a customer might paste into a support question.
PERSONAL_DATA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", _I)),
    ("phone_fr", re.compile(r"(?<![\w+])(?:(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]|0[1-9])(?:[\s.-]?\d{2}){4}(?!\d)")),
    ("self_identification", re.compile(
        r"\b(?:je\s+m" + _APOS + r"\s*appelle|mon\s+nom\s+(?:est|c" + _APOS + r"est)|my\s+name\s+is|"
        r"je\s+suis\s+(?:monsieur|madame|mademoiselle|m\.|mme|mlle))\s+\w", _I)),
    ("order_number", re.compile(
        r"\b(?:commande|cde|cmd|order|facture|invoice)\s*(?:n\s?[°ºo]\.?|num[ée]ro|number|no\.?|#)?\s*[:#]?\s*"
        r"(?:[A-Z]{1,4}[-_]?)?\d[\d-]{3,}\d\b"
        r"|\b(?:CMD|CDE|ORD|AMK|FAC)[-_ ]?\d{5,}\b"
        r"|#\s?\d{6,}\b", _I)),
    ("iban", re.compile(r"\bFR\d{2}(?:\s?[0-9A-Z]{4}){5}\s?[0-9A-Z]{3}\b", _I)),
    ("card_number", re.compile(r"\b\d{13,19}\b|\b\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}\b")),
)

REDIRECT_MESSAGE = (
    "Votre message contient des informations personnelles (adresse e-mail, téléphone, nom ou numéro de "
    "commande). Pour toute question sur votre compte ou une commande, connectez-vous à votre espace client "
    "(Mon compte > Mes commandes) : vos informations y sont protégées et un conseiller peut vous répondre. "
    "Ne partagez pas ces données ici."
)


@dataclass(frozen=True)
class InjectionScan:
    flagged: bool
    patterns: tuple[str, ...]
    cleaned: str  # the text with every flagged span removed: what gets searched


def scan_injection(text: str) -> InjectionScan:
    cleaned = text
    hits: list[str] = []
    for name, pattern in INJECTION_PATTERNS:
        cleaned, count = pattern.subn(" ", cleaned)
        if count:
            hits.append(name)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" \t\n,;:-")
    return InjectionScan(bool(hits), tuple(hits), cleaned)


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_personal_data(text: str) -> tuple[str, ...]:
    """The kinds of personal data found in ``text`` (empty when there is none)."""
    kinds: list[str] = []
    for kind, pattern in PERSONAL_DATA_PATTERNS:
        for match in pattern.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if kind == "card_number" and not _luhn_ok(digits):
                continue
            if kind == "order_number" and len(digits) < 5:
                continue
            kinds.append(kind)
            break
    return tuple(kinds)


def has_searchable_text(text: str) -> bool:
    """At least one word of two letters or digits is left to search for."""
    return re.search(r"\w{2,}", text) is not None
