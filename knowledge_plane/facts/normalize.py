"""Text and value normalisation: accent folding, canonical keys, French numbers, units and scales.

Two forms of text are used: ``fold`` keeps every character at its position (so a regex match on
the folded text points at the same span of the original, which is kept "as written"), and
``norm_key`` collapses punctuation and spaces to give the key two spellings must share.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_SPACES = {"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " "}
_QUOTES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"}
_KEY_DROP = re.compile(r"[^a-z0-9%€°']+")


def _fold_char(char: str) -> str:
    if char in _SPACES:
        return " "
    if char in _QUOTES:
        return "'"
    base = unicodedata.normalize("NFKD", char)[:1] or char
    return base.lower() if len(base.lower()) == 1 else char


def fold(text: str) -> str:
    """Lowercase, accents removed, typographic spaces and quotes made plain; same length as text."""
    return "".join(_fold_char(c) for c in text)


def norm_key(text: str) -> str:
    """The comparison key of a label: folded, punctuation as single spaces ("Délai d’achat" → "delai d'achat")."""
    folded = _KEY_DROP.sub(" ", fold(str(text)))
    return " ".join(folded.replace(" ' ", " ").split())


# A number as French or English documents write it: 99,7 · 99.7 · 1 000 · 1 000,50 · 1,000.50
NUMBER_RE = r"[+-]?(?:\d{1,3}(?:[ ,.]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
_NUMBER = re.compile(rf"^{NUMBER_RE}$")


def parse_number(text: str) -> float:
    """Parse a written number; raises ValueError with the text when it is not one."""
    raw = fold(str(text)).strip()
    if not _NUMBER.match(raw):
        raise ValueError(f"not a number: {text!r}")
    digits = raw.replace(" ", "")
    commas, dots = digits.count(","), digits.count(".")
    if commas and dots:  # "1.000,50" or "1,000.50": the last separator is the decimal one
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        digits = digits.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif commas > 1 or dots > 1:  # "1.000.000": only thousands separators repeat
        digits = digits.replace(",", "").replace(".", "")
    else:  # one separator: a decimal, French "99,7" as English "99.7"
        digits = digits.replace(",", ".")
    return float(digits)


@dataclass(frozen=True)
class Quantity:
    """A normalised value: number in its canonical unit, or text; ``written`` is the source text."""

    value: float | str
    unit: str | None
    written: str

    @property
    def value_type(self) -> str:
        return "number" if isinstance(self.value, float) else "text"


def format_number(value: float) -> str:
    """Shortest faithful text for a normalised number (0.997, 30, 6.9)."""
    text = f"{value:.10g}"
    return text if "e" not in text else repr(value)
