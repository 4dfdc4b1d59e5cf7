"""Matching questions to published facts (the query service's ``facts`` field), on the sample corpus."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from knowledge_plane.facts.match import match_facts, tokens
from knowledge_plane.facts.publish import SNAPSHOT_FIELDS


@pytest.fixture(scope="module")
def snapshot(corpus_facts):
    """Snapshot rows of every fact the corpus yields, as if a reviewer had approved them all."""
    _, store, _ = corpus_facts
    rows = []
    for fact in store.list_facts("default"):
        data = fact.to_dict()
        rows.append({name: data[name] for name in SNAPSHOT_FIELDS})
    return rows


SPRING_2026 = dt.date(2026, 4, 15)


@pytest.mark.parametrize(("question", "subject", "predicate", "value", "unit"), [
    ("Quel est le délai de retour ?", "retour produit", "délai de retour", 30.0, "day"),
    ("Combien de temps dure la garantie des pièces ?", "garantie des pièces", "durée de garantie", 2.0, "year"),
    ("Livraison gratuite à partir de combien ?", "livraison gratuite", "seuil minimum d'achat", 59.0, "EUR"),
    ("Quel est le délai de remboursement ?", "remboursement", "délai de remboursement après réception du retour",
     14.0, "business_day"),
    ("Quel était le seuil de livraison gratuite en 2024 ?", "livraison gratuite", "seuil minimum d'achat", 49.0, "EUR"),
])
def test_questions_find_their_fact(snapshot, question, subject, predicate, value, unit):
    best = match_facts(question, snapshot, on=SPRING_2026)[0]
    assert (best["subject"], best["predicate"], best["value"], best["unit"]) == (subject, predicate, value, unit)
    assert best["source"].count("@") == 1 and 0 < best["score"] <= 1


def test_an_archived_rule_never_answers_for_today(snapshot):
    found = match_facts("Quel est le seuil de livraison gratuite ?", snapshot, limit=10, on=SPRING_2026)
    assert found[0]["value"] == 59.0 and 49.0 not in {f["value"] for f in found}


@pytest.mark.parametrize("question", ["Quelle est la capitale de la France ?", "Bonjour", "", "?"])
def test_unrelated_questions_find_nothing(snapshot, question):
    assert match_facts(question, snapshot, on=SPRING_2026) == []


def test_limit_order_and_purity(snapshot):
    before = copy.deepcopy(snapshot)
    found = match_facts("délai de retour", snapshot, limit=2, on=SPRING_2026)
    assert len(found) == 2 and found[0]["score"] >= found[1]["score"]
    assert match_facts("délai de retour", snapshot, limit=0) == []
    assert snapshot == before  # the snapshot rows are not modified


def test_tokens_fold_case_accents_plurals_and_stopwords():
    assert tokens("Quels sont les DÉLAIS de retour d'achat ?") == ["delai", "retour", "achat"]
