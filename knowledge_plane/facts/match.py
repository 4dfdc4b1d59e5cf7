"""Matching a question to published facts, lexically, on normalised words (pure, no model).

"Quel est le délai de retour ?" must find (retour produit, délai de retour, 30 jours): the
question's content words are compared, accent- and case-folded and lightly stemmed, with the
fact's subject, predicate and their ontology aliases. A fact is a match only when the question
names its predicate (or an alias of it), and only when it holds on the day asked about — a date or
year in the question, else today — so an archived rule never answers a question about now.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from knowledge_plane.facts.config import Ontology, load_ontology
from knowledge_plane.facts.normalize import norm_key
from knowledge_plane.facts.temporal import overlaps, parse_date

MIN_SCORE = 0.6
_STOPWORDS = frozenset("""
a au aux avec ce ces cet cette comment d dans de des du elle elles en est et etait il ils je l la le les leur leurs
ma mes mon ne nos notre nous on ou par pas peut peux pour puis qu quand que quel quelle quelles quels qui quoi sa
se ses si son sont sur ta tes ton tu un une vos votre vous y faut faire fait
an and are at be can do does for how i in is it my of on or the to what when which with you your
""".split())
_YEAR = re.compile(r"\b(19|20)\d{2}\b")
_ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 4 and word[-1] in "sx" else word


def tokens(text: str) -> list[str]:
    """Content words of a text: folded, apostrophes split ("d'achat" → "achat"), stopwords dropped."""
    words = norm_key(text).replace("'", " ").split()
    return [_stem(w) for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    # "dure"/"duree", "retour"/"retourner": a shared stem of four letters or more
    return min(len(a), len(b)) >= 4 and abs(len(a) - len(b)) <= 3 and (a.startswith(b) or b.startswith(a))


def _coverage(phrase: list[str], words: Sequence[str]) -> float:
    return sum(any(_same(p, w) for w in words) for p in phrase) / len(phrase) if phrase else 0.0


def _period(question: str, on: dt.date | None) -> tuple[dt.date, dt.date]:
    iso = _ISO.search(question)
    if iso:
        day = parse_date(iso.group(0))
        if day:
            return day, day
    year = _YEAR.search(question)
    if year:
        value = int(year.group(0))
        return dt.date(value, 1, 1), dt.date(value, 12, 31)
    day = on or dt.date.today()
    return day, day


def match_facts(question: str, facts: list[dict[str, Any]], limit: int = 5, *, on: dt.date | None = None,
                ontology: Ontology | None = None) -> list[dict[str, Any]]:
    """The facts (snapshot rows of publish.approved_facts_snapshot) that answer a question, best
    first, each with a ``score`` in [0, 1]; at most ``limit``, possibly none.

    ``on`` is the day the question is about when it names none (default: today).
    """
    ontology = ontology or load_ontology()
    asked = tokens(question)
    if not asked or limit <= 0:
        return []
    start, end = _period(question, on)
    scored = []
    for fact in facts:
        if not overlaps(parse_date(fact.get("valid_from")), parse_date(fact.get("valid_until")), start, end):
            continue
        subject_key = fact.get("subject_key") or norm_key(fact.get("subject", ""))
        predicate_key = fact.get("predicate_key") or norm_key(fact.get("predicate", ""))
        subject_phrases = [tokens(fact.get("subject", ""))] + [tokens(a) for a in ontology.subject_aliases(subject_key)]
        predicate_phrases = [tokens(fact.get("predicate", ""))] + [
            tokens(a) for a in ontology.predicate_aliases(predicate_key)]
        predicate_cover = max(_coverage(p, asked) for p in predicate_phrases)
        if predicate_cover == 0:
            continue  # the question does not name what the value is of
        vocabulary = [w for phrase in subject_phrases + predicate_phrases for w in phrase]
        question_cover = _coverage(asked, vocabulary)
        subject_cover = max(_coverage(p, asked) for p in subject_phrases)
        score = round(0.5 * question_cover + 0.35 * predicate_cover + 0.15 * subject_cover, 4)
        if question_cover >= 0.5 and score >= MIN_SCORE:
            scored.append((score, float(fact.get("confidence") or 0), fact.get("valid_from") or "", fact))
    scored.sort(key=lambda item: (item[0], item[1], item[2]), reverse=True)
    return [{**fact, "score": score} for score, _, _, fact in scored[:limit]]
