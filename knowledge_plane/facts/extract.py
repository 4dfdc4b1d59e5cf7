"""Rule extraction of facts from parsed documents, without a generative model.

Four sources, most trusted first: the front matter's ``facts:`` list, ``Clé : valeur unité``
lines, key/value tables, and statements read with a French NLP pipeline (knowledge_plane.facts.nlp: "Le SLA de
SAP S/4HANA Cloud est de 99,7 %", "les retours sont acceptés sous trente jours"). Only
statements count: code sections and code-like lines, inline code, URLs and template placeholders
are never read, and a value must be a quantity with a unit or a date. A fact's validity comes from
the fact itself (or a dated cue in its sentence), else the document's ``valid_from``, else the
document's ``updated`` date — never the day the extractor ran. Each fact carries its method and a
confidence (method x truth level x how sure the reading is).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from knowledge_plane.facts import nlp
from knowledge_plane.facts.config import DOCUMENT_SUBJECT, Ontology, Rules, load_ontology, load_rules
from knowledge_plane.facts.model import Fact, fact_uuid
from knowledge_plane.facts.normalize import NUMBER_RE, Quantity, fold, norm_key
from knowledge_plane.facts.temporal import DateError, parse_date

RULES_EXTRACTOR = "rules-2"
_METHOD_RANK = {"front_matter": 0, "key_value": 1, "table": 2, "sentence": 3, "llm": 4}
_RANGE_VALUE = re.compile(rf"^\s*(?:de\s+|entre\s+)?{NUMBER_RE}\s*(?:a|-|–|et|ou|to)\s*\d")
_KV_SPLIT = re.compile(r"\s*:\s+")
_NEXT_KEY = re.compile(r"\s(?=[A-ZÀ-ÖØ-Þ])")
_CLAUSE_END = re.compile(r".*[.!?;]\s+")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_KEY_OK = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][\w'’ ()/-]{2,79}$")
# A key that names a path, an option or an identifier ("Disk /dev/loop0", "expire-default"): command
# output or configuration, not a statement.
_CODE_KEY = re.compile(r"/|\b[a-z]+[-_][a-z]+(?:[-_][a-z]+)*$|\b[a-z]+[A-Z]\w*|^[A-Z][a-z]+ [A-Z][a-z]+$")
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
    return extract_documents([ctx])[0]


def extract_documents(ctxs: list[DocumentContext]) -> list[Extraction]:
    """The rule-extracted facts of several documents, their statements parsed in one batch.

    Front matter, key/value lines and key/value tables are read first; the remaining prose lines
    that hold a quantity go through one ``nlp.pipe`` for the whole batch, so the French model is
    loaded (once per process) only when some changed document states a quantity in a sentence.
    """
    outs = [Extraction() for _ in ctxs]
    found: list[list[Fact]] = [[] for _ in ctxs]
    statements: list[tuple[int, str, str]] = []  # (document, line as written, line as parsed)
    for n, ctx in enumerate(ctxs):
        out = outs[n]
        found[n].extend(_front_matter(ctx, out))
        for section in ctx.document.get("sections") or []:
            if section.get("kind") == "code":
                continue  # code is documented by its docstrings, not stated as facts
            text = str(section.get("text", ""))
            if section.get("kind") == "table" or text.lstrip().startswith("|"):
                found[n].extend(_tables(ctx, text, out))
                continue
            pairs, rest = _key_values(ctx, text, out)
            found[n].extend(pairs)
            for line in nlp.statement_text(rest).splitlines():
                parsed = nlp.digits_for_words(line, ctx.rules)
                if nlp.has_quantity(parsed, ctx.rules):
                    statements.append((n, line, parsed))
    for (n, line, _), doc in zip(statements, nlp.parse([p for _, _, p in statements]), strict=True):
        found[n].extend(_statements(ctxs[n], doc, line, outs[n]))
    for out, facts in zip(outs, found, strict=True):
        out.facts = merge_candidates(facts)
    return outs


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


def _resolve_key(ctx: DocumentContext, key: str) -> tuple[str, str] | None:
    """(subject, predicate) a key names: a phrase of the ontology, a known predicate of the
    document's subject, or else an unknown predicate of the document's subject."""
    phrase = ctx.ontology.phrase(key)
    if phrase:
        return phrase
    if ctx.ontology.is_known_predicate(key):
        return DOCUMENT_SUBJECT, key
    if ctx.ontology.subject(key).known:
        return None  # "Livraison en point relais : 4,90 €" names a subject, not what the number is
    return DOCUMENT_SUBJECT, key


def _pair_fact(ctx: DocumentContext, key: str, value: str, method: str, out: Extraction) -> Fact | None:
    key = " ".join(key.replace("*", "").split()).strip(" -:")
    value = " ".join(value.replace("*", "").split()).strip(" .;,")
    if not key or not value or not _KEY_OK.match(key) or len(key.split()) > 10 or _CODE_KEY.search(key):
        return None
    if _RANGE_VALUE.match(fold(value)) or nlp.looks_like_code(value) or nlp.statement_text(value) != value:
        return None  # a range ("2 à 4 jours ouvrés") is not one value; code and placeholders are not values
    quantity = _stated_value(ctx, value)
    if quantity is None:
        return None
    pair = _resolve_key(ctx, key)
    if pair is None:
        return None
    try:
        return ctx.make_fact(pair[0], pair[1], quantity, method=method, evidence=value)
    except DateError as exc:
        out.problems.append(f"{ctx.doc_id}: {key}: {exc}")
        return None


def _stated_value(ctx: DocumentContext, value: str) -> Quantity | None:
    """A quantity with a unit ("14 jours ouvrés", "6,90 €") or a date; anything else is not a value."""
    quantity = ctx.rules.quantity(value)
    if quantity.value_type == "number" and quantity.unit:
        return quantity
    day = nlp.parse_french_date(value) if re.fullmatch(r"[\w /-]{6,30}", value) and re.search(r"\d{4}", value) else None
    return Quantity(day.isoformat(), None, value) if day else None


def _key_values(ctx: DocumentContext, text: str, out: Extraction) -> tuple[list[Fact], str]:
    """``Clé : valeur`` pairs, including several a converter ran together on one line; and the
    lines that held none (left for the sentence reader)."""
    facts: list[Fact] = []
    rest: list[str] = []
    for raw_line in text.splitlines():
        line = _LIST_MARK.sub("", raw_line.strip().replace("**", ""))
        parts = _KV_SPLIT.split(line)
        if line.startswith("|") or len(parts) < 2 or nlp.looks_like_code(line):
            rest.append(raw_line)
            continue
        before = len(facts)
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
        if len(facts) == before:
            rest.append(raw_line)
    return facts, "\n".join(rest)


def _first_clause(value: str) -> str:
    # "3 mm. Distance de rodage…" → "3 mm": the value ends with its sentence
    match = re.search(r"[.;!?](?:\s|$)", value)
    return value[:match.start()] if match and not re.match(r"^\d+[.,]\d", value[match.start() - 1:]) else value


_VALUE_HEADERS = frozenset({"valeur", "valeurs", "value", "detail", "details", "", "parametre", "reglage", "donnee"})


def _tables(ctx: DocumentContext, text: str, out: Extraction) -> list[Fact]:
    """Rows of two-column key/value tables, the header row excepted; wider tables say nothing.

    Under a header "| Élément | Valeur |" each row's key names a property of the document's
    subject; under a header naming a property ("| Offre | Tarif |") each row is about a different
    subject, so two rows with different values are two facts, not a contradiction.
    """
    rows = [m.group(1) for m in map(_TABLE_ROW.match, text.splitlines()) if m]
    cells = [[c.strip() for c in row.split("|")] for row in rows if not _TABLE_RULE.match(row)]
    if len(cells) < 2 or any(len(r) != 2 for r in cells):
        return []
    header = norm_key(cells[0][1])
    facts = []
    for key, value in cells[1:]:
        if header in _VALUE_HEADERS:
            fact = _pair_fact(ctx, key, value, "table", out)
        else:
            fact = _row_fact(ctx, key, cells[0][1], value, out)
        if fact:
            facts.append(fact)
    return facts


def _row_fact(ctx: DocumentContext, subject: str, predicate: str, value: str, out: Extraction) -> Fact | None:
    """One row of a table whose value column names the property: the row's key is the subject."""
    subject = " ".join(subject.replace("*", "").split())
    value = " ".join(value.replace("*", "").split()).strip(" .;,")
    if not _KEY_OK.match(subject) or not _KEY_OK.match(predicate) or nlp.looks_like_code(value) \
            or nlp.statement_text(value) != value or _RANGE_VALUE.match(fold(value)):
        return None
    quantity = _stated_value(ctx, value)
    if quantity is None:
        return None
    try:
        return ctx.make_fact(subject, predicate, quantity, method="table", evidence=value)
    except DateError as exc:
        out.problems.append(f"{ctx.doc_id}: {subject}: {exc}")
        return None


def _statements(ctx: DocumentContext, doc: Any, line: str, out: Extraction) -> list[Fact]:
    """Facts of one parsed statement line: each quantity read against the parse (see knowledge_plane.facts.nlp)."""
    facts = []
    base = ctx.rules.confidence("sentence", ctx.document.get("truth_level"))
    for sent in doc.sents:
        found = nlp.mentions(sent.text, ctx.rules)
        if not found:
            continue
        start, until = nlp.validity_in(fold(sent.text))
        evidence = sent.text if sent.text in line else max(re.split(r"\s{2,}|\d", sent.text), key=len)
        for mention in found:
            reading = nlp.read_quantity(sent, mention, sent.start_char)
            if reading is None:
                continue
            subject, predicate, factor = nlp.resolve(reading, mention, ctx.rules, ctx.ontology)
            named = ctx.ontology.predicate(predicate).label
            if not predicate or len(predicate) > 80 or not _KEY_OK.match(predicate.replace("(", "").replace(")", "")) \
                    or not subject.strip() or len(subject.split()) > 8 or not nlp.fits(named, mention, ctx.rules):
                continue  # a phrase too long to be a name, or a quantity of the wrong kind for it
            new_entity = subject != DOCUMENT_SUBJECT and not ctx.ontology.subject(subject).known
            try:
                facts.append(ctx.make_fact(
                    subject, nlp.bounded_predicate(predicate, mention), nlp.quantity_of(mention, ctx.rules),
                    method="sentence", valid_from=start, valid_until=until, inherit_until=start is None,
                    evidence=evidence, confidence=round(base * factor, 4),
                    entity_type=nlp.ENTITY_TYPES.get(reading.entity) if new_entity else None))
            except DateError as exc:
                out.problems.append(f"{ctx.doc_id}: {mention.written}: {exc}")
    return facts
