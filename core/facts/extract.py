"""Rule extraction of facts from one parsed document, without any model.

Four sources, most trusted first: the front matter's ``facts:`` list, ``Clé : valeur unité``
lines, two-column tables, and quantified sentences matched by the patterns of rules.yaml
("un SLA de 99,7 %", "retour sous 30 jours", "livraison gratuite dès 59 €"). A fact's validity
comes from the fact itself (or a date in its sentence), else the document's ``valid_from``, else
the document's ``updated`` date — never the day the extractor ran.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.facts.config import DOCUMENT_SUBJECT, Ontology, Rules, load_ontology, load_rules
from core.facts.model import Fact, fact_uuid
from core.facts.normalize import NUMBER_RE, Quantity, fold, norm_key, parse_number
from core.facts.temporal import DateError, parse_date

RULES_EXTRACTOR = "rules-1"
_METHOD_RANK = {"front_matter": 0, "key_value": 1, "table": 2, "sentence": 3, "llm": 4}
_MONTHS = {"janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7, "aout": 8,
           "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12, "january": 1, "february": 2, "march": 3,
           "april": 4, "may": 5, "june": 6, "july": 7, "august": 8, "september": 9, "october": 10,
           "november": 11, "december": 12}
_DATE = (r"(?P<{n}>\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{4}}|\d{{1,2}}(?:er)? (?:"
         + "|".join(_MONTHS) + r") \d{{4}})")
_FROM_DATE = re.compile(r"(?:a partir du|a compter du|depuis le|des le|effective|from|since) " + _DATE.format(n="d"))
_UNTIL_DATE = re.compile(r"(?:jusqu'au|jusqu'a|until) " + _DATE.format(n="d"))
_SPAN = re.compile(r"\bdu " + _DATE.format(n="d") + " au " + _DATE.format(n="e"))
_RANGE_AFTER = re.compile(r"^\s*(?:a|-|–|et|ou|to)\s*\d")
_RANGE_BEFORE = re.compile(r"\d\s*(?:a|-|–|et|ou|to)\s*$")
_RANGE_VALUE = re.compile(rf"^\s*(?:de\s+|entre\s+)?{NUMBER_RE}\s*(?:a|-|–|et|ou|to)\s*\d")
_KV_SPLIT = re.compile(r"\s*:\s+")
_NEXT_KEY = re.compile(r"\s(?=[A-ZÀ-ÖØ-Þ])")
_CLAUSE_END = re.compile(r".*[.!?;]\s+")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_KEY_OK = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][\w'’ ()/-]{2,79}$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^[\s|:-]+$")


@dataclass
class Extraction:
    """What the rules found in one document, and what they had to leave out (with why)."""

    facts: list[Fact] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class DocumentContext:
    """A parsed document as the extractors see it, with the chunks that hold its text."""

    tenant_id: str
    document: Mapping[str, Any]
    chunks: list[Mapping[str, Any]] = field(default_factory=list)
    ontology: Ontology = field(default_factory=load_ontology)
    rules: Rules = field(default_factory=load_rules)

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.document.get("meta") or {}

    @property
    def doc_id(self) -> str:
        return str(self.document["doc_id"])

    @property
    def subject(self) -> str:
        """What a sentence without a subject of its own ("un SLA de 99,7 %") is about."""
        return str(self.meta.get("subject") or self.document.get("title") or self.doc_id)

    def default_valid_from(self) -> dt.date | None:
        return parse_date(self.meta.get("valid_from")) or parse_date(self.document.get("updated"))

    def default_valid_until(self) -> dt.date | None:
        return parse_date(self.meta.get("valid_until"))

    def chunk_for(self, evidence: str, predicate_key: str) -> str | None:
        """The chunk holding the evidence, preferring one that also names the predicate."""
        needle = " ".join(fold(evidence).split())
        if not needle:
            return None
        words = [w for w in predicate_key.split() if len(w) > 3]
        best: tuple[int, str] | None = None
        for chunk in self.chunks:
            text = " ".join(fold(str(chunk.get("text", ""))).split())
            if needle in text:
                score = sum(w in text for w in words)
                if best is None or score > best[0]:
                    best = (score, str(chunk["chunk_id"]))
        return best[1] if best else None

    def make_fact(self, subject: str, predicate: str, quantity: Quantity, *, method: str,
                  fact_type: str | None = None, entity_type: str | None = None, valid_from: Any = None,
                  valid_until: Any = None, evidence: str | None = None, confidence: float | None = None,
                  model: str | None = None, prompt_id: str | None = None, inherit_until: bool = True) -> Fact:
        """One normalised fact: canonical subject/predicate, typed value, validity, provenance.

        ``inherit_until=False`` keeps the document's end of validity off a fact that states its own
        start (an archived policy mentioning its successor "applicable depuis le 1er janvier 2026").
        """
        subject_term = self.ontology.subject(self.subject if subject == DOCUMENT_SUBJECT else subject)
        predicate_term = self.ontology.predicate(predicate)
        start = parse_date(valid_from, "valid_from") or self.default_valid_from()
        until = parse_date(valid_until, "valid_until") or (self.default_valid_until() if inherit_until else None)
        if start and until and until < start:
            raise DateError(f"valid_until {until} is before valid_from {start}")
        kind = (fact_type or predicate_term.type or self.rules.fact_type_for(quantity.unit, quantity.value_type))
        return Fact(
            id=fact_uuid(self.tenant_id, self.doc_id, subject_term.key, predicate_term.key, quantity.value, start),
            tenant_id=self.tenant_id, namespace=str(self.document["namespace"]), subject=subject_term.label,
            subject_key=subject_term.key, predicate=predicate_term.label, predicate_key=predicate_term.key,
            object=quantity.written, value=quantity.value, unit=quantity.unit, value_type=quantity.value_type,
            fact_type=str(kind).upper(), source_document=self.doc_id,
            source_version=str(self.document.get("doc_version", "")),
            source_path=str(self.document.get("source_path", "")),
            source_chunk_id=self.chunk_for(evidence or quantity.written, predicate_term.key),
            source_hash=str(self.document.get("content_hash", "")), extraction_method=method,
            extraction_model=model, prompt_id=prompt_id, entity_type=entity_type or subject_term.type,
            confidence=confidence if confidence is not None else
            self.rules.confidence(method, self.document.get("truth_level")),
            valid_from=start, valid_until=until,
        )


def extract_document(ctx: DocumentContext) -> Extraction:
    """Every rule-extracted fact of one document, one per id (the most trusted method wins)."""
    out = Extraction()
    found: list[Fact] = []
    found.extend(_front_matter(ctx, out))
    for section in ctx.document.get("sections") or []:
        if section.get("kind") == "code":
            continue  # code is documented by its docstrings, not stated as facts
        text = str(section.get("text", ""))
        if section.get("kind") == "table" or text.lstrip().startswith("|"):
            found.extend(_tables(ctx, text, out))
        found.extend(_key_values(ctx, text, out))
        found.extend(_sentences(ctx, text, out))
    out.facts = merge_candidates(found)
    return out


def merge_candidates(candidates: Iterable[Fact]) -> list[Fact]:
    """One fact per id, keeping the most trusted extraction method's version."""
    best: dict[str, Fact] = {}
    for fact in candidates:
        held = best.get(fact.id)
        if held is None or _METHOD_RANK.get(fact.extraction_method, 9) < _METHOD_RANK.get(held.extraction_method, 9):
            best[fact.id] = fact
    return list(best.values())


def _front_matter(ctx: DocumentContext, out: Extraction) -> list[Fact]:
    facts = []
    for n, entry in enumerate(ctx.meta.get("facts") or []):
        try:
            quantity = ctx.rules.quantity(entry.get("value"), entry.get("unit"))
            facts.append(ctx.make_fact(
                str(entry["subject"]), str(entry["predicate"]), quantity, method="front_matter",
                fact_type=entry.get("fact_type"), entity_type=entry.get("entity_type") or entry.get("subject_type"),
                valid_from=entry.get("valid_from"), valid_until=entry.get("valid_until"),
                confidence=float(entry["confidence"]) if entry.get("confidence") is not None else None))
        except (KeyError, ValueError) as exc:
            out.problems.append(f"{ctx.doc_id}: facts[{n}] skipped: {exc}")
    return facts


def _resolve_key(ctx: DocumentContext, key: str, numeric: bool) -> tuple[str, str] | None:
    """(subject, predicate) a key names: a phrase of the ontology, a known predicate of the
    document's subject, or — for a number — an unknown predicate of the document's subject."""
    phrase = ctx.ontology.phrase(key)
    if phrase:
        return phrase
    if ctx.ontology.is_known_predicate(key):
        return DOCUMENT_SUBJECT, key
    if ctx.ontology.subject(key).known:
        return None  # "Livraison en point relais : 4,90 €" names a subject, not what the number is
    return (DOCUMENT_SUBJECT, key) if numeric else None


def _pair_fact(ctx: DocumentContext, key: str, value: str, method: str, out: Extraction) -> Fact | None:
    key = " ".join(key.replace("*", "").split()).strip(" -:")
    value = " ".join(value.replace("*", "").split()).strip(" .;,")
    if not key or not value or not _KEY_OK.match(key) or len(key.split()) > 10:
        return None
    if _RANGE_VALUE.match(fold(value)):
        return None  # "2 à 4 jours ouvrés": a range is not one value
    quantity = ctx.rules.quantity(value)
    numeric = quantity.value_type == "number"
    if not numeric and len(value) > 80:
        return None
    pair = _resolve_key(ctx, key, numeric)
    if pair is None:
        return None
    try:
        return ctx.make_fact(pair[0], pair[1], quantity, method=method, evidence=value)
    except DateError as exc:
        out.problems.append(f"{ctx.doc_id}: {key}: {exc}")
        return None


def _key_values(ctx: DocumentContext, text: str, out: Extraction) -> list[Fact]:
    """``Clé : valeur`` pairs, including several a converter ran together on one line."""
    facts = []
    for raw_line in text.splitlines():
        line = _LIST_MARK.sub("", raw_line.strip().replace("**", ""))
        if line.startswith("|"):
            continue
        parts = _KV_SPLIT.split(line)
        if len(parts) < 2:
            continue
        key: str | None = _CLAUSE_END.sub("", parts[0])
        for n, segment in enumerate(parts[1:], start=1):
            if n < len(parts) - 1:
                split = _NEXT_KEY.search(segment, 1)
                value, next_key = (segment[:split.start()], segment[split.end():]) if split else (segment, None)
            else:
                value, next_key = segment, None
            if key:
                fact = _pair_fact(ctx, key, _first_clause(value), "key_value", out)
                if fact:
                    facts.append(fact)
            key = next_key
    return facts


def _first_clause(value: str) -> str:
    # "3 mm. Distance de rodage…" → "3 mm": the value ends with its sentence
    match = re.search(r"[.;!?](?:\s|$)", value)
    return value[:match.start()] if match and not re.match(r"^\d+[.,]\d", value[match.start() - 1:]) else value


def _tables(ctx: DocumentContext, text: str, out: Extraction) -> list[Fact]:
    """Rows of two-column markdown tables, the header row excepted."""
    rows = [m.group(1) for m in map(_TABLE_ROW.match, text.splitlines()) if m]
    cells = [[c.strip() for c in row.split("|")] for row in rows if not _TABLE_RULE.match(row)]
    if len(cells) < 2 or any(len(r) != 2 for r in cells):
        return []
    facts = []
    for key, value in cells[1:]:
        fact = _pair_fact(ctx, key, value, "table", out)
        if fact:
            facts.append(fact)
    return facts


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = max(text.rfind(c, 0, start) for c in ".!?\n")
    rights = [i for i in (text.find(c, end) for c in ".!?\n") if i != -1]
    return left + 1, (min(rights) if rights else len(text))


def _date_in(folded: str, pattern: re.Pattern[str], group: str = "d") -> dt.date | None:
    match = pattern.search(folded)
    return _day(match.group(group)) if match else None


def _day(raw: str) -> dt.date | None:
    try:
        if "-" in raw:
            return dt.date.fromisoformat(raw)
        if "/" in raw:
            day, month, year = (int(x) for x in raw.split("/"))
            return dt.date(year, month, day)
        day_text, month_name, year = raw.split()
        return dt.date(int(year), _MONTHS[month_name], int(day_text.removesuffix("er")))
    except (ValueError, KeyError):
        return None


def _sentences(ctx: DocumentContext, text: str, out: Extraction) -> list[Fact]:
    folded = fold(text)
    facts = []
    for pattern in ctx.rules.sentence_patterns:
        for match in pattern.regex.finditer(folded):
            n_start, u_end = match.start("number"), match.end("unit")
            if _RANGE_AFTER.match(folded[u_end:]) or _RANGE_AFTER.match(folded[match.end("number"):]) \
                    or _RANGE_BEFORE.search(folded[:n_start]):
                continue
            if "key" in pattern.regex.groupindex:
                pair = ctx.ontology.phrase(match.group("key"))
                key_text = text[match.start("key"):match.end("key")]
                named = len(norm_key(key_text).split()) >= 2 and not ctx.ontology.is_known_predicate(key_text)
                if pair is None and named:
                    pair = (DOCUMENT_SUBJECT, key_text)  # "délai légal de rétractation": a named quantity
                if pair is None:
                    continue  # a bare "délai de 14 jours" says nothing about what it is the délai of
            else:
                pair = (str(pattern.subject), str(pattern.predicate))
            written = text[n_start:u_end]
            number = parse_number(text[n_start:match.end("number")])
            canonical, factor = ctx.rules.canonical_unit(match.group("unit"))
            quantity = Quantity(round(number * factor, 12), canonical, written)
            s_start, s_end = _sentence_bounds(folded, n_start, u_end)
            sentence = folded[s_start:s_end]
            start = _date_in(sentence, _SPAN) or _date_in(sentence, _FROM_DATE)
            until = _date_in(sentence, _SPAN, "e") or _date_in(sentence, _UNTIL_DATE)
            try:
                facts.append(ctx.make_fact(pair[0], pair[1], quantity, method="sentence", valid_from=start,
                                           valid_until=until, inherit_until=start is None,
                                           evidence=text[max(s_start, n_start - 40):u_end]))
            except DateError as exc:
                out.problems.append(f"{ctx.doc_id}: {written}: {exc}")
    return facts
