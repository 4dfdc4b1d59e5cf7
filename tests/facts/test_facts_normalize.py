"""Normalisation: numbers as French and English write them, units and scales, canonical subjects."""

from __future__ import annotations

import pytest

from knowledge_plane.facts.config import ConfigError, Ontology, load_ontology, load_rules
from knowledge_plane.facts.model import fact_uuid, value_key
from knowledge_plane.facts.normalize import fold, norm_key, parse_number


@pytest.mark.parametrize(("text", "expected"), [
    ("99,7", 99.7), ("99.7", 99.7), ("6,90", 6.9), ("1 000", 1000.0), ("1\u202f000,50", 1000.5),
    ("1.000.000", 1_000_000.0), ("1,000.50", 1000.5), ("1.000,50", 1000.5), ("-18", -18.0), ("30", 30.0),
])
def test_numbers(text, expected):
    assert parse_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "12 jours", "1,2,3,4x"])
def test_not_numbers(text):
    with pytest.raises(ValueError, match="not a number"):
        parse_number(text)


@pytest.mark.parametrize(("value", "unit", "expected_value", "expected_unit"), [
    (99.7, "%", 0.997, "ratio"),
    ("99,7 %", None, 0.997, "ratio"),
    ("99,7\u00a0%", None, 0.997, "ratio"),
    (0.997, None, 0.997, None),
    (30, "jours", 30.0, "day"),
    ("30 jours à compter de la réception", None, 30.0, "day"),
    (30, "days", 30.0, "day"),
    (14, "jours ouvrés", 14.0, "business_day"),
    (2, "ans", 2.0, "year"),
    (2, "years", 2.0, "year"),
    (59, "€", 59.0, "EUR"),
    (59, "EUR", 59.0, "EUR"),
    ("6,90 €", None, 6.9, "EUR"),
    (15, "heures", 15.0, "hour"),
    ("15 h", None, 15.0, "hour"),
    (30, "kg", 30.0, "kg"),
    (17, "caractères", 17.0, "caractères"),  # an unknown unit is kept as written
])
def test_quantities(value, unit, expected_value, expected_unit):
    quantity = load_rules().quantity(value, unit)
    assert quantity.value == pytest.approx(expected_value)
    assert quantity.unit == expected_unit
    assert quantity.value_type == "number"


def test_text_values_keep_their_words():
    quantity = load_rules().quantity("date de livraison", None)
    assert quantity.value_type == "text" and quantity.value == "date de livraison" and quantity.unit is None


@pytest.mark.parametrize(("a", "b", "fact_type", "same"), [
    ((0.997, "ratio"), (0.997, None), "SERVICE_LEVEL", True),       # 99.7 % = 0.997
    ((0.997, "ratio"), (0.995, "ratio"), "SERVICE_LEVEL", False),
    ((2.0, "year"), (24.0, "month"), "DURATION", True),             # same dimension, other unit
    ((30.0, "day"), (30.0, "business_day"), "DURATION", False),     # business days are not days
    ((59.0, "EUR"), (59.004, "EUR"), "COST", True),                  # within a cent
    ((59.0, "EUR"), (59.01, "EUR"), "COST", False),
    ((59.0, "EUR"), (59.0, "USD"), "COST", False),                   # incompatible units
    (("Date de livraison", None), ("date de  livraison", None), "POLICY", True),
])
def test_compare_with_tolerance(a, b, fact_type, same):
    assert load_rules().compare(a[0], a[1], b[0], b[1], fact_type)[0] is same


def test_value_diff_pct():
    _, pct = load_rules().compare(0.997, "ratio", 0.995, "ratio", "SERVICE_LEVEL")
    assert pct == pytest.approx(0.2006, abs=1e-4)


def test_fold_keeps_positions_and_norm_key_joins_spellings():
    text = "Délai d’achat : 99,7\u202f%"
    assert len(fold(text)) == len(text)
    assert norm_key("  Délai   d’ACHAT ") == norm_key("delai d'achat") == "delai d'achat"


@pytest.mark.parametrize(("written", "canonical"), [
    ("Garantie", "garantie des pièces"), ("GARANTIE DES PIECES", "garantie des pièces"),
    ("retours", "retour produit"), ("Point relais", "livraison en point relais"),
    ("une plateforme", "service"),
])
def test_subject_aliases(written, canonical):
    assert load_ontology().subject(written).label == canonical


@pytest.mark.parametrize(("written", "canonical"), [
    ("Disponibilité", "SLA"), ("sla", "SLA"),
    ("délai de remboursement", "délai de remboursement après réception du retour"),
    ("le délai de retour", "délai de retour"), ("Lavage", "Lavage"),
])
def test_predicate_aliases(written, canonical):
    assert load_ontology().predicate(written).label == canonical


def test_same_statement_same_id_whatever_the_spelling():
    rules = load_rules()
    a = rules.quantity("99,7 %", None).value
    b = rules.quantity(0.997, None).value
    assert value_key(a) == value_key(b)
    assert fact_uuid("t", "d", "s", "p", a, None) == fact_uuid("t", "d", "s", "p", b, None)
    assert fact_uuid("t", "d", "s", "p", a, None) != fact_uuid("u", "d", "s", "p", a, None)


def test_alias_naming_two_subjects_is_refused():
    with pytest.raises(ConfigError, match="names both"):
        Ontology({"entity_types": ["Policy"], "subjects": {
            "retour produit": {"type": "Policy", "aliases": ["retour"]},
            "retour colis": {"type": "Policy", "aliases": ["Retour"]}}})
