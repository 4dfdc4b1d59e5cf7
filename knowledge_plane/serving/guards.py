"""Input guards: prompt-injection patterns and personal data, in questions and in documents.

Injection patterns are flagged (the service logs them) and cut out of the text that is searched,
so a question wrapped in "ignore previous instructions…" still finds its passages but the
instruction never reaches a prompt built from them. The text is normalised before matching
(Unicode compatibility forms, zero-width characters, s p a c e d letters, l33t digits) so trivial
disguises do not pass. The build plane runs the same detector over every parsed document
(``find_injected_instructions``): a document that talks to the model is quarantined.

Personal data is never searched at all: the caller is sent to the authenticated account area,
where the customer's own data lives. Numbers are validated rather than only shaped:
``phonenumbers`` decides what is a telephone number (French national and international formats),
``python-stdnum`` checks IBANs, card numbers (Luhn) and French social-security numbers. A bare
ten-digit number that could be a French landline is a part number in this shop (Bosch
``0986494524``) unless the question talks about telephoning or it is written in pairs.

Measured on ``tests/query/data/guards_labelled.jsonl`` with ``bench/guards.py`` (docs/query-service.md, "Guards").
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.fr import nir

_I = re.IGNORECASE
_APOS = "['’ʼ]"  # typewriter and typographic apostrophes
_ME = r"(?:me|moi|m" + _APOS + r")"

# (name, pattern): English and French forms of the usual prompt-injection moves. Matched on the
# normalised, case-folded text.
INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ignore_instructions", re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|skip)\b[^.?!\n]{0,40}?"
        r"\b(?:instructions?|prompts?|rules|directives?|guidelines|guardrails|above)\b|"
        r"\b(?:ignore|disregard|forget)\s+(?:everything|all)\s+(?:above|before|you|i\b|that)", _I)),
    ("ignore_instructions_fr", re.compile(
        r"\b(?:ignor(?:e|es|ez|er)|oubli(?:e|es|ez|er)|ne\s+tiens?\s+pas\s+compte|"
        r"ne\s+tenez\s+pas\s+compte|outrepass(?:e|ez|er)|contourn(?:e|ez|er)|fais\s+abstraction|"
        r"ne\s+(?:respecte|respectez|suis|suivez|ob[ée]is|ob[ée]issez)\s+plus)\b[^.?!\n]{0,50}?"
        r"\b(?:instructions?|consignes?|r[eè]gles?|directives?|prompts?|restrictions?|tout\s+ce\s+qu|"
        r"pr[ée]c[èe]de)", _I)),
    ("new_instructions", re.compile(
        r"\b(?:new|updated|additional|real)\s+(?:instructions?|rules|task|orders)\s*:|"
        r"\bnouvel(?:le)?s?\s+(?:consignes?|instructions?|r[eè]gles?|t[aâ]che|ordres?)\s*:|"
        r"#{2,}\s*(?:instructions?|system|response|consignes?)\b|"
        r"\b(?:begin|end)\s+(?:of\s+)?(?:system|prompt|instructions?)\b", _I)),
    ("system_prompt", re.compile(
        r"\b(?:system\s*prompt|system\s+message|initial\s+(?:prompt|instructions)|hidden\s+prompt|"
        r"prompt\s+syst[eè]me|invite\s+syst[eè]me|message\s+syst[eè]me|instructions?\s+syst[eè]me|"
        r"instructions?\s+(?:cach[ée]es?|initiales?|d" + _APOS + r"origine)|"
        r"(?:ton|votre|your)\s+(?:prompt|instructions|consignes))\b", _I)),
    ("reveal_configuration", re.compile(
        r"\b(?:reveal|print|show|repeat|dump|leak|output|display|translate|r[ée]v[eè]l(?:e|ez|er)|"
        r"affich(?:e|ez|er)|r[ée]p[eè]t(?:e|ez|er)|montr(?:e|ez|er)|donn(?:e|ez)[- ]moi|tradui[st]?|traduisez)\b"
        r"[^.?!\n]{0,30}?"
        r"(?:\b(?:(?:your|the)\s+(?:hidden\s+)?(?:instructions|prompt|configuration|rules)|"
        r"(?:tes|vos|ton|votre|le|la)\s+(?:prompt|configuration|consignes|instructions\s+(?:syst|cach|init))|"
        r"(?:text|texte|prompt|everything|tout)\s+(?:above|ci-dessus|au-dessus|before|pr[ée]c[ée]dent)|"
        r"above|ci-dessus|au-dessus|"
        r"api[\s_-]*keys?|cl[ée]s?\s+(?:d" + _APOS + r"\s*)?api|mots?\s+de\s+passe|passwords?|secrets?|tokens?)\b)",
        _I)),
    ("chat_template", re.compile(
        r"(?:\[/?INST\]|<<\s*/?SYS\s*>>|<\|[^|<>\s]{1,32}\|>|</?\s*(?:system|assistant|user|instructions?)\s*>)"
        r"(?:\s*(?:system|assistant|user)\b)?", _I)),
    ("template_expression", re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\$\{[^}]{0,200}\}", re.DOTALL)),
    ("role_override", re.compile(
        r"\b(?:you\s+are\s+now|you\s+are\s+no\s+longer|from\s+now\s+on|roleplay\s+as|"
        r"pretend\s+(?:to\s+be|you\s+are|that|the|your)|"
        r"act\s+as\s+(?:if\b|(?:an?|my|the)\s+(?:\w+\s+){0,2}?(?:ai|assistant|model|bot|chatbot|dan|hacker|"
        r"admin|administrator|developer|system|terminal|unrestricted|uncensored|evil|jailbroken)\b)|"
        r"tu\s+es\s+(?:maintenant|d[ée]sormais)|vous\s+[êe]tes\s+(?:maintenant|d[ée]sormais)|"
        r"tu\s+n" + _APOS + r"es\s+plus|vous\s+n" + _APOS + r"[êe]tes\s+plus|d[ée]sormais,?\s+(?:tu|vous|r[ée]ponds)|"
        r"[àa]\s+partir\s+de\s+maintenant|agis(?:sez)?\s+comme|fais\s+comme\s+si|faites\s+comme\s+si|"
        r"jou(?:e|ez)\s+le\s+r[ôo]le)\b", _I)),
    ("privilege_escalation", re.compile(
        r"\b(?:(?:admin|administrator|debug|developer|sudo|root|maintenance)\s+mode|"
        r"mode\s+(?:admin(?:istrateur)?|debug|d[ée]bogage|d[ée]veloppeur|maintenance|root)|"
        r"i\s+am\s+(?:the|your)\s+(?:developer|admin|administrator|creator|owner)|"
        r"je\s+suis\s+(?:le|ton|votre)\s+(?:d[ée]veloppeur|administrateur|cr[ée]ateur))\b", _I)),
    ("disable_safety", re.compile(
        r"\b(?:(?:disable|turn\s+off|deactivate|remove|switch\s+off|bypass)\s+(?:your\s+|the\s+|all\s+)?"
        r"(?:safety\s+)?(?:filters?|safety|guardrails|restrictions|censorship|moderation)|"
        r"d[ée]sactiv(?:e|ez|er)\s+(?:tes|vos|les|ton|votre)\s+(?:filtres?|restrictions?|protections?|"
        r"garde-fous|r[eè]gles|censure|mod[ée]ration)|"
        r"sans\s+(?:aucune\s+)?(?:restriction|censure)s?|without\s+(?:any\s+)?(?:restrictions?|filters?|"
        r"censorship)|(?:safety|security)\s+rules\s+(?:don" + _APOS + r"?t|do\s+not)\s+apply)\b", _I)),
    ("jailbreak", re.compile(
        r"\b(?:jailbreak|DAN\s+mode|do\s+anything\s+now|developer\s+mode|god\s+mode|mode\s+d[ée]veloppeur|"
        r"tu\s+es\s+dan|you\s+are\s+dan)\b", _I)),
    ("role_prefix", re.compile(  # "system: you must…"; a "Système : ABS" heading talks to nobody
        r"(?im)^\s*(?:#{1,6}\s*)?(?:system|assistant|syst[eè]me)\s*:"
        r"(?=[^\n]*\b(?:you|tu|vous|the\s+user|l" + _APOS + r"utilisateur|obey|ob[ée]is)\b)")),
)

_ZERO_WIDTH = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACED_LETTERS = re.compile(r"\b(?:[A-Za-z] ){3,}[A-Za-z]\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_WORD = re.compile(r"\b(?=[A-Za-z]*[013457@$])(?=[^\s]*[A-Za-z])[A-Za-z013457@$]{3,}\b")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")


def _normalise(text: str) -> str:
    """Compatibility forms folded, invisible characters dropped, "i g n o r e" joined up."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    return _SPACED_LETTERS.sub(lambda m: m.group().replace(" ", ""), text)


def _unleet(text: str) -> str:
    # Only words mixing letters and digits ("ign0re", "1nstructions"): same length, so spans found
    # here cut the same characters out of the normalised text; part numbers keep their digits.
    return _LEET_WORD.sub(lambda m: m.group().translate(_LEET), text)


def _decoded_payloads(text: str) -> list[str]:
    """Base64 blobs that decode to readable text (an instruction smuggled past the patterns)."""
    decoded = []
    for blob in _BASE64.findall(text):
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if raw.isprintable():
            decoded.append(raw)
    return decoded


@dataclass(frozen=True)
class InjectionScan:
    flagged: bool
    patterns: tuple[str, ...]
    cleaned: str  # the normalised text with every flagged span removed: what gets searched


def _spans(text: str) -> list[tuple[str, int, int]]:
    folded = _unleet(text)
    return [(name, m.start(), m.end()) for name, pattern in INJECTION_PATTERNS for m in pattern.finditer(folded)]


def scan_injection(text: str) -> InjectionScan:
    normalised = _normalise(text)
    spans = _spans(normalised)
    hits = list(dict.fromkeys(name for name, _, _ in spans))
    if any(_spans(_normalise(payload)) for payload in _decoded_payloads(normalised)):
        hits.append("encoded_instructions")
        spans += [("encoded_instructions", m.start(), m.end()) for m in _BASE64.finditer(normalised)]
    keep = [True] * len(normalised)
    for _, start, end in spans:
        keep[start:end] = [False] * (end - start)
    cleaned = "".join(ch if kept else " " for ch, kept in zip(normalised, keep, strict=True))
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" \t\n,;:.-")
    return InjectionScan(bool(hits), tuple(hits), cleaned)


@dataclass(frozen=True)
class InjectedInstruction:
    """An instruction to the model found in a document: the pattern and the offending excerpt."""

    pattern: str
    excerpt: str


# Documents are held to narrower phrasings than questions: the question patterns, run over every
# page of python3.11-doc, debian-handbook and debian-reference-fr, quarantined good pages ("Do not
# forget, these rules…", "apt always follows your instructions", Windows "Developer Mode", "sans
# restrictions", "afficher la configuration", `<system>` in a configuration example). These need
# the instruction to name what it overrides, or a chat-template token no prose contains.
DOCUMENT_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ignore_instructions", re.compile(
        r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+)?(?:of\s+)?(?:the\s+)?"
        r"(?:previous|prior|above|earlier|preceding|system)\s+(?:instructions?|prompts?|rules|directives?)", _I)),
    ("ignore_instructions_fr", re.compile(
        r"\b(?:ignor|oubli|outrepass)\w*\s+(?:toutes\s+)?(?:les|tes|vos)\s+(?:instructions?|consignes?|"
        r"r[eè]gles?|directives?)\s+(?:pr[ée]c[ée]dentes?|ci-dessus|ant[ée]rieures?|syst[eè]me)", _I)),
    ("chat_template", re.compile(r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|(?:im_start|im_end|system|user|assistant)\|>", _I)),
    ("jailbreak", re.compile(r"\b(?:DAN\s+mode|do\s+anything\s+now|you\s+are\s+(?:now\s+)?DAN)\b", _I)),
    ("reveal_prompt", re.compile(
        r"\b(?:reveal|print|show|repeat|leak)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+prompt|"
        r"initial\s+instructions)|\b(?:r[ée]v[eè]le|affiche|r[ée]p[eè]te)\w*\s+(?:ton|votre|le)\s+prompt\s+syst[eè]me",
        _I)),
)


def find_injected_instructions(text: str, limit: int = 3) -> list[InjectedInstruction]:
    """Instructions addressed to a language model inside document text (the build quarantines the
    document): the question detector without the question-only patterns, at most ``limit``."""
    normalised = _normalise(text)
    folded = _unleet(normalised)
    spans = [(name, m.start(), m.end())
             for name, pattern in DOCUMENT_INJECTION_PATTERNS for m in pattern.finditer(folded)]
    found = []
    for name, start, end in sorted(spans, key=lambda s: s[1])[:limit]:
        excerpt = re.sub(r"\s+", " ", normalised[max(0, start - 20):end + 20]).strip()
        found.append(InjectedInstruction(name, excerpt[:120]))
    return found


def injection_quarantine_detail(text: str) -> str | None:
    """The quarantine detail for a document holding instructions to the model; None when clean."""
    found = find_injected_instructions(text)
    return "; ".join(f"{f.pattern}: «{f.excerpt}»" for f in found) or None


# -- personal data ------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}"
    r"|[\w.+-]+\s*(?:\[at\]|\(at\)|\{at\}|\barobase\b)\s*[\w-]+(?:\s*(?:\[dot\]|\(dot\)|\{dot\}|\.|\bpoint\b)\s*[\w-]+)+",
    _I)
_PHONE_CONTEXT = re.compile(
    r"\b(?:t[ée]l(?:[ée]phone)?|phone|portable|mobile|fixe|gsm|whatsapp|sms|appel\w*|rappel\w*|call\w*|"
    r"joign\w*|joindre|reach|ring|contact\w*|r[ée]pondeur|num[ée]ro\s*:)", _I)
_PHONE_PAIRS = re.compile(r"^0\d(?:[\s.-]\d{2}){4}$")
_SELF_IDENTIFICATION = (
    re.compile(r"\b(?:je\s+m" + _APOS + r"\s*appelle|mon\s+nom\s+(?:est|c" + _APOS + r"est)|my\s+name\s+is|"
               r"je\s+suis\s+(?:monsieur|madame|mademoiselle|m\.|mme|mlle)|i\s+am\s+(?:mr|mrs|ms|miss)\.?)\s+\w", _I),
    # Case matters below: a capitalised name after "moi c'est", "I'm", a form label or a sign-off.
    re.compile(r"\b(?:[Mm]oi\s+c" + _APOS + r"est|I" + _APOS + r"m|I\s+am)\s+"
               r"[A-ZÀ-Ý][a-zà-ÿ]+\s+[A-ZÀ-Ý][a-zà-ÿ-]+"),
    re.compile(r"\b(?:[Nn]om|[Pp]r[ée]nom|[Nn]ame|[Ss]urname|[Ff]irst\s+name)\s*:\s*[A-ZÀ-Ý][a-zà-ÿ]+"),
    re.compile(r"\b(?:[Cc]ordialement|[Bb]ien\s+[àa]\s+vous|[Ss]alutations|[Rr]egards|[Ss]incerely|[Tt]hanks)"
               r"\s*,?\s+[A-ZÀ-Ý][a-zà-ÿ]+\s+[A-ZÀ-Ý][a-zà-ÿ-]+"),
)
_ORDER_NUMBER = re.compile(
    r"\b(?:commande|cde|cmd|order|facture|invoice)\s*(?:n\s?[°ºo]\.?|num[ée]ro|number|no\.?|#)?\s*[:#]?\s*"
    r"(?:[A-Z]{1,4}[-_]?)?\d[\d-]{3,}\d\b"
    r"|\b(?:CMD|CDE|ORD|AMK|FAC)[-_ ]?\d{5,}\b"
    r"|\b(?:colis|suivi|tracking|parcel|exp[ée]dition)\b[^.?!\n]{0,25}?\b(?=[A-Z]*\d)[A-Z0-9]{10,}\b"
    r"|#\s?\d{6,}\b", _I)
_POSTAL_ADDRESS = re.compile(
    r"\b\d{1,4}\s*(?:bis|ter)?\s*,?\s*(?:rue|avenue|av\.|boulevard|bd|all[ée]e|impasse|chemin|quai|"
    r"street|road|lane|drive)\s+(?:de\s+la\s+|de\s+l" + _APOS + r"|du\s+|des\s+|de\s+)?[A-ZÀ-Ý]\w+", _I)
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){10,32}")
_IBAN_CONTEXT = re.compile(r"\b(?:iban|rib|bic|virement|bank\s+account|compte\s+bancaire)\b", _I)
_CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_CARD_CONTEXT = re.compile(r"\b(?:carte|card|cb|visa|mastercard|amex|american\s+express|cvv|cryptogramme)\b", _I)
_NIR_CONTEXT = re.compile(r"\b(?:s[ée]cu\b|s[ée]curit[ée]\s+sociale|nir\b|insee|social\s+security|carte\s+vitale)", _I)
_NIR_CANDIDATE = re.compile(r"\b[12]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?\d{2}\b")


def _card_brand_ok(digits: str) -> bool:
    """Issuer prefix and length of the card networks a customer here might paste."""
    n = len(digits)
    return ((digits[0] == "4" and n in (13, 16, 19)) or (digits[:2] in {"51", "52", "53", "54", "55"} and n == 16)
            or (2221 <= int(digits[:4]) <= 2720 and n == 16) or (digits[:2] in {"34", "37"} and n == 15)
            or (digits[:4] == "6011" or digits[:2] == "65") and n in (16, 19)
            or (digits[:2] in {"36", "38", "30"} and n == 14) or (digits[:2] == "35" and n == 16))


def _has_phone(text: str) -> bool:
    context = _PHONE_CONTEXT.search(text) is not None
    for match in phonenumbers.PhoneNumberMatcher(text, "FR", leniency=phonenumbers.Leniency.POSSIBLE):
        raw = match.raw_string.strip()
        if not phonenumbers.is_valid_number(match.number):
            if context:  # a number not (yet) allocated is still the customer's number when they say so
                return True
            continue
        if raw.startswith(("+", "00")):  # international notation is never a part number
            return True
        national = phonenumbers.national_significant_number(match.number)
        if context or _PHONE_PAIRS.match(raw) or match.number.country_code != 33 or national[:1] in {"6", "7"}:
            return True
        # A bare 0X… number outside a conversation about telephoning: a part number (Bosch 0 986…).
    return False


def _has_iban(text: str) -> bool:
    context = _IBAN_CONTEXT.search(text) is not None
    for match in _IBAN_CANDIDATE.finditer(text):
        compact = re.sub(r"\s", "", match.group())
        if any(iban.is_valid(compact[:length]) for length in range(min(len(compact), 34), 14, -1)):
            return True
        if context and len(compact) >= 14:  # a mistyped IBAN is still the customer's bank account
            return True
    return False


def _has_card(text: str) -> bool:
    context = _CARD_CONTEXT.search(text) is not None
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if (luhn.is_valid(digits) and _card_brand_ok(digits)) or (context and 13 <= len(digits) <= 19):
            return True
    return False


def _has_nir(text: str) -> bool:
    context = _NIR_CONTEXT.search(text) is not None
    return any(context or nir.is_valid(re.sub(r"\s", "", m.group())) for m in _NIR_CANDIDATE.finditer(text))


# (kind, detector): personal data a customer might paste into a support question.
PERSONAL_DATA_DETECTORS = (
    ("email", lambda text: _EMAIL.search(text) is not None),
    ("phone", _has_phone),
    ("self_identification", lambda text: any(p.search(text) for p in _SELF_IDENTIFICATION)),
    ("order_number", lambda text: any(len(re.sub(r"\D", "", m.group())) >= 5 for m in _ORDER_NUMBER.finditer(text))),
    ("postal_address", lambda text: _POSTAL_ADDRESS.search(text) is not None),
    ("iban", _has_iban),
    ("card_number", _has_card),
    ("social_security_number", _has_nir),
)

REDIRECT_MESSAGE = (
    "Votre message contient des informations personnelles (adresse e-mail, téléphone, nom ou numéro de "
    "commande). Pour toute question sur votre compte ou une commande, connectez-vous à votre espace client "
    "(Mon compte > Mes commandes) : vos informations y sont protégées et un conseiller peut vous répondre. "
    "Ne partagez pas ces données ici."
)


def find_personal_data(text: str) -> tuple[str, ...]:
    """The kinds of personal data found in ``text`` (empty when there is none)."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    return tuple(kind for kind, found in PERSONAL_DATA_DETECTORS if found(text))


def has_searchable_text(text: str) -> bool:
    """At least one word of two letters or digits is left to search for."""
    return re.search(r"\w{2,}", text) is not None
