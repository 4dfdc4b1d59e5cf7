"""Rule extraction (front matter, key: value lines, two-column tables, quantified sentences) and the
namespace pipeline: incremental by content hash, retraction, entity types, the real sample corpus."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from knowledge_plane.build.facts import extract_namespace_facts
from knowledge_plane.build.records import ChunksRecord, ParsedRecord
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.facts import review
from knowledge_plane.facts.extract import DocumentContext, extract_document
from knowledge_plane.facts.model import APPROVED, CONFLICTED, CONTRADICTS, DUPLICATES, PROPOSED, REJECTED
from knowledge_plane.settings import Settings
from tests.facts.support import NAMESPACE, chunks_of, document


def facts_of(doc, tenant="t"):
    return extract_document(DocumentContext(tenant, doc, chunks_of(doc))).facts


def triples(facts):
    return {(f.subject, f.predicate, f.value, f.unit) for f in facts}


# -- front matter ---------------------------------------------------------------------------
def test_front_matter_facts_are_normalised():
    doc = document("policies.returns", "Texte.", valid_from="2026-01-01", facts=[
        {"subject": "Retour produit", "predicate": "Délai de retour", "value": 30, "unit": "jours",
         "fact_type": "DURATION"},
        {"subject": "service", "predicate": "disponibilité", "value": "99,7 %", "valid_from": "2024-06-01"}])
    facts = {f.predicate: f for f in facts_of(doc)}
    retour, sla = facts["délai de retour"], facts["SLA"]
    assert (retour.subject, retour.value, retour.unit, retour.fact_type) == ("retour produit", 30.0, "day", "DURATION")
    assert retour.valid_from == dt.date(2026, 1, 1) and retour.extraction_method == "front_matter"
    assert (sla.value, sla.unit, sla.fact_type) == (0.997, "ratio", "SERVICE_LEVEL")
    assert sla.valid_from == dt.date(2024, 6, 1)
    assert retour.confidence == pytest.approx(0.95)


def test_validity_falls_back_to_the_document_never_to_today():
    fact = {"subject": "s", "predicate": "p", "value": 1, "unit": "jours"}
    from_updated = facts_of(document("a", "x", updated="2025-03-02", facts=[fact]))[0]
    assert from_updated.valid_from == dt.date(2025, 3, 2)
    undated = facts_of(document("b", "x", updated=None, facts=[fact]))[0]
    assert undated.valid_from is None  # unknown start, not the day the extractor ran
    archived = facts_of(document("c", "x", valid_from="2024-01-01", valid_until="2025-12-31", facts=[fact]))[0]
    assert (archived.valid_from, archived.valid_until) == (dt.date(2024, 1, 1), dt.date(2025, 12, 31))


def test_a_bad_front_matter_fact_is_reported_not_fatal():
    doc = document("a", "x", facts=[{"subject": "s", "predicate": "p", "value": 1, "valid_from": "2024-13-40"},
                                    {"subject": "s", "predicate": "q", "value": 2, "unit": "ans"}])
    result = extract_document(DocumentContext("t", doc))
    assert [f.predicate for f in result.facts] == ["q"]
    assert "facts[0]" in result.problems[0] and "expected YYYY-MM-DD" in result.problems[0]


# -- key: value lines and tables ------------------------------------------------------------
def test_key_value_lines_run_together_by_the_converter():
    doc = document("refund", "Délai de remboursement : 14 jours ouvrés après réception du retour "
                             "Délai de contrôle du retour : 3 jours ouvrés maximum")
    assert triples(facts_of(doc)) == {
        ("remboursement", "délai de remboursement après réception du retour", 14.0, "business_day"),
        ("contrôle du retour à l'entrepôt", "délai maximal de contrôle", 3.0, "business_day")}
    assert {f.extraction_method for f in facts_of(doc)} == {"key_value"}


@pytest.mark.parametrize(("line", "expected"), [
    ("Durée de garantie : 2 ans", ("garantie des pièces", "durée de garantie", 2.0, "year")),
    ("Seuil de livraison gratuite : 59 €", ("livraison gratuite", "seuil minimum d'achat", 59.0, "EUR")),
    ("Tarif de l'étiquette de retour prépayée : 6,90 €", ("étiquette de retour prépayée", "tarif", 6.9, "EUR")),
    ("Heure limite d'expédition le jour même : 15 h", ("expédition le jour même", "heure limite de commande", 15.0,
                                                        "hour")),
    ("- Taux de résolution au premier contact : 75 %", ("Doc", "Taux de résolution au premier contact", 0.75, "ratio")),
    ("Épaisseur minimale conseillée : 3 mm. Distance de rodage conseillée : 300 km.",
     ("Doc", "Épaisseur minimale conseillée", 3.0, "mm")),
])
def test_key_value_line(line, expected):
    assert expected in triples(facts_of(document("kv", line, title="Doc")))


@pytest.mark.parametrize("line", [
    "Livraison à domicile Colissimo : 2 à 4 jours ouvrés",      # a range
    "Livraison en point relais : 4,90 €",                       # names a subject, not what the number is
    "Q : Quel est le délai ?",                                  # a FAQ marker, not a key
    "Période de validité : du 1er janvier 2024 au 31 décembre 2025",  # text under an unknown key
    "La garantie couvre :",
])
def test_lines_that_are_not_facts(line):
    assert facts_of(document("kv", line)) == []


def test_two_column_tables_but_not_wider_ones():
    two = "| Élément | Valeur |\n|---|---|\n| Seuil de livraison gratuite | 59 € |\n| Délai de retour | 30 jours |"
    three = "| Élément | 2024 | 2026 |\n|---|---|---|\n| Seuil de livraison gratuite | 49 € | 59 € |"
    assert triples(facts_of(document("t2", two))) == {
        ("livraison gratuite", "seuil minimum d'achat", 59.0, "EUR"),
        ("retour produit", "délai de retour", 30.0, "day")}
    assert {f.extraction_method for f in facts_of(document("t2", two))} == {"table"}
    assert facts_of(document("t3", three)) == []


# -- quantified sentences -------------------------------------------------------------------
@pytest.mark.parametrize(("sentence", "expected"), [
    ("Nous garantissons un SLA de 99,7 % sur la plateforme.", ("Contrat", "SLA", 0.997, "ratio")),
    ("Le retour est accepté sous 30 jours.", ("retour produit", "délai de retour", 30.0, "day")),
    ("Toutes les pièces ont une garantie 2 ans.", ("garantie des pièces", "durée de garantie", 2.0, "year")),
    ("La livraison est gratuite dès 59 € d'achat.", ("livraison gratuite", "seuil minimum d'achat", 59.0, "EUR")),
    ("Vous disposez d'un délai de retour de 30 jours.", ("retour produit", "délai de retour", 30.0, "day")),
    ("Le remboursement intervient sous 14 jours ouvrés.", ("remboursement",
                                                           "délai de remboursement après réception du retour", 14.0,
                                                           "business_day")),
    ("Le délai légal de rétractation de 14 jours s'applique.", ("Contrat", "délai légal de rétractation", 14.0, "day")),
])
def test_quantified_sentences(sentence, expected):
    facts = facts_of(document("s", sentence, title="Contrat"))
    assert expected in triples(facts)
    assert {f.extraction_method for f in facts} == {"sentence"}
    assert all(f.source_chunk_id == chunks_of(document("s", sentence))[0]["chunk_id"] for f in facts)


@pytest.mark.parametrize("sentence", [
    "Comptez de 2 à 5 jours ouvrés.",                # a range of nothing named
    "Nous avons 30 clients.",                         # no property, no unit
    "Si le remboursement n'apparaît pas dans les 5 jours ouvrés, contactez-nous.",  # a condition
    "Le chat est ouvert de 9 h à 18 h.",              # opening hours, not a duration
    "Commandez avant 13 h pour une expédition le jour même.",  # a time of day
    "La remise est accordée sous 14 jours ouvrés.",   # a remise is not a time
])
def test_sentences_that_are_not_facts(sentence):
    assert facts_of(document("s", sentence)) == []


def test_a_property_of_nothing_named_is_a_low_confidence_proposal():
    from knowledge_plane.facts.config import load_rules

    facts = facts_of(document("s", "Le délai est de 14 jours."))  # a délai of what?
    assert [(f.predicate, f.value) for f in facts] == [("délai", 14.0)]
    assert facts[0].confidence < load_rules().low_confidence


@pytest.mark.parametrize(("sentence", "expected"), [
    ("Le SLA de SAP S/4HANA Cloud est de 99,7 %.", {("SAP S/4HANA Cloud", "SLA", 0.997, "ratio")}),
    ("La disponibilité garantie de la plateforme S/4HANA est de 99,5 %.",
     {("SAP S/4HANA Cloud", "SLA", 0.995, "ratio")}),
    ("Le délai de rétractation est de trente jours.", {("Doc", "délai de rétractation", 30.0, "day")}),
    ("Le préavis de résiliation est d'au plus 3 mois.", {("Doc", "préavis de résiliation", 3.0, "month")}),
    ("Un délai de livraison de 3 à 6 jours ouvrés.", {("Doc", "délai de livraison (min)", 3.0, "business_day"),
                                                      ("Doc", "délai de livraison (max)", 6.0, "business_day")}),
    ("La livraison prend entre 2 et 3 jours ouvrés.", {("livraison", "délai (min)", 2.0, "business_day"),
                                                       ("livraison", "délai (max)", 3.0, "business_day")}),
    ("Chaque compte dispose d'un quota de stockage de 50 Go.", {("compte", "quota de stockage", 50.0, "GB")}),
    ("Le plafond des repas est de 1 250,50 €.", {("repas", "plafond", 1250.5, "EUR")}),  # determined: a subject
])
def test_statements_read_with_the_french_parser(sentence, expected):
    assert triples(facts_of(document("s", sentence, title="Doc"))) == expected


@pytest.mark.parametrize(("text", "start", "until"), [
    ("À compter du 1er juin 2024, le SLA est de 99,9 %.", dt.date(2024, 6, 1), dt.date(2030, 12, 31)),
    ("Jusqu'au 31/12/2025, le SLA reste de 99,5 %.", dt.date(2023, 1, 1), dt.date(2025, 12, 31)),
])
def test_dated_cues_read_by_dateparser(text, start, until):
    (fact,) = facts_of(document("sla", text, valid_from="2023-01-01", valid_until="2030-12-31"))
    assert (fact.valid_from, fact.valid_until or dt.date(2030, 12, 31)) == (start, until)


def test_facts_only_from_statements_never_code_placeholders_urls_or_wide_tables():
    """The real bad examples of issue 10: code, template placeholders and table cells taken for prices."""
    doc = document("spec", [
        "tarif = {r['price']}€",
        "Utilisez `tarif = 5 €` dans la configuration.",
        "Le tarif est de {{ price }} € et le délai de ${DELAY} jours.",
        "Voir https://example.com/tarif-12-euros pour 12 €.",
        "| Poste | Tarif |\n|---|---|\n| Embeddings | Embeddings generes 1x en CI (pas en PROD) |\n"
        "| OpenAI | $0 vs ~$80/mois OpenAI |",
        "| Poste | 2024 | 2025 |\n|---|---|---|\n| Licence | 10 € | 12 € |",
        "tarif : Embeddings generes 1x en CI (pas en PROD)",
    ], title="Spec")
    assert facts_of(doc) == []


def test_rows_of_a_property_table_are_different_subjects():
    table = "| Offre | Tarif |\n|---|---|\n| Starter | 9 € |\n| Pro | 29 € |"
    facts = facts_of(document("offers", table))
    assert triples(facts) == {("Starter", "tarif", 9.0, "EUR"), ("Pro", "tarif", 29.0, "EUR")}
    assert len({f.subject_key for f in facts}) == 2  # two subjects: nothing to contradict


def test_a_key_value_value_must_be_a_quantity_with_a_unit_or_a_date():
    facts = facts_of(document("kv", ["Date d'effet : 1er juin 2024", "Nombre de postes : 12",
                                     "Mode de paiement : carte bancaire"], title="Doc"))
    assert triples(facts) == {("Doc", "Date d'effet", "2024-06-01", None)}


def test_a_date_in_the_sentence_sets_the_validity():
    doc = document("sla", ["À partir du 1er juin 2024, le SLA est de 99,7 %.",
                           "Du 1er janvier 2024 au 31 mai 2024, le SLA était de 99,5 %."],
                   valid_from="2023-01-01", valid_until="2030-12-31")
    by_value = {f.value: f for f in facts_of(doc)}
    assert (by_value[0.997].valid_from, by_value[0.997].valid_until) == (dt.date(2024, 6, 1), None)
    assert (by_value[0.995].valid_from, by_value[0.995].valid_until) == (dt.date(2024, 1, 1), dt.date(2024, 5, 31))


def test_one_fact_per_statement_and_stable_ids():
    doc = document("policy", ["Délai de retour : 30 jours", "Vous disposez d'un délai de retour de 30 jours."],
                   facts=[{"subject": "retour produit", "predicate": "délai de retour", "value": 30, "unit": "jours"}])
    first, again = facts_of(doc), facts_of(doc)
    assert len(first) == 1 and first[0].extraction_method == "front_matter"  # the most trusted source wins
    assert [f.id for f in first] == [f.id for f in again]
    assert facts_of(doc, tenant="other")[0].id != first[0].id


def test_code_sections_are_not_mined():
    doc = document("code", "x")
    doc["sections"] = [{"heading_path": ["m"], "text": "TIMEOUT = 30  # délai de retour de 30 jours", "location": "l1",
                        "kind": "code"}]
    assert facts_of(doc) == []


# -- the namespace pipeline -----------------------------------------------------------------
@pytest.fixture
def build_ctx(tmp_path: Path, registry_url: str, monkeypatch: pytest.MonkeyPatch, tenant: str) -> BuildContext:
    """A build context of its own tenant; the stage records are written by each test."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    settings = Settings(paths={"data_dir": data}, registry={"url": registry_url}, tenant_id=tenant)
    return BuildContext(settings, run_id="facts")


def stage(ctx: BuildContext, *docs) -> None:
    ctx.stages.write(ParsedRecord(namespace=NAMESPACE, documents=list(docs)))
    ctx.stages.write(ChunksRecord(namespace=NAMESPACE, chunks=[c for d in docs for c in chunks_of(d)]))


def test_contradicting_sla_documents_through_the_pipeline(build_ctx, sql_store):
    stage(build_ctx, document("contrat-a", "La plateforme garantit un SLA de 99,7 %.", title="Plateforme"),
          document("contrat-b", "La plateforme offre un SLA de 99,5 %.", title="Plateforme"))
    report = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert report.new_facts == 2 and report.new_conflicts == {CONTRADICTS: 1}
    assert report.critical_conflicts == 1 and report.facts_by_status == {CONFLICTED: 2}


def test_unchanged_documents_are_not_extracted_again(build_ctx, sql_store):
    stage(build_ctx, document("a", "Délai de retour : 30 jours"), document("b", "Durée de garantie : 2 ans"))
    first = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    again = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert (first.new_facts, first.documents_extracted) == (2, 2)
    assert (again.new_facts, again.documents_extracted, again.documents_unchanged) == (0, 0, 2)
    audit = sql_store.audit_log(build_ctx.settings.tenant_id)
    assert [e.action for e in audit].count("created") == 2


def test_a_changed_document_retracts_what_it_no_longer_says(build_ctx, sql_store):
    stage(build_ctx, document("a", "Délai de retour : 30 jours"), document("b", "Durée de garantie : 2 ans"))
    extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    (warranty,) = sql_store.list_facts(build_ctx.settings.tenant_id, source_document="b")
    review.approve(sql_store, build_ctx.settings.tenant_id, [warranty.id], "alice")
    stage(build_ctx, document("a", "Délai de retour : 45 jours"), document("b", "Durée de garantie : 3 ans"))
    report = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert report.documents_extracted == 2 and report.retracted == 1
    by_object = {f.object: f for f in sql_store.list_facts(build_ctx.settings.tenant_id)}
    assert by_object["30 jours"].status == REJECTED and by_object["30 jours"].reason.startswith("retracted")
    assert by_object["45 jours"].status == PROPOSED
    # an approved fact is never retracted silently: the new statement meets it as a conflict
    assert by_object["2 ans"].status == APPROVED and by_object["3 ans"].status == CONFLICTED
    stage(build_ctx, document("a", "Délai de retour : 30 jours"), document("b", "Durée de garantie : 3 ans"))
    back = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    (revived,) = sql_store.get_facts(build_ctx.settings.tenant_id, [by_object["30 jours"].id])
    assert back.revived == 1 and revived.status == PROPOSED


def test_a_document_leaving_the_namespace_takes_its_proposed_facts_along(build_ctx, sql_store):
    stage(build_ctx, document("a", "Délai de retour : 30 jours"), document("b", "Durée de garantie : 2 ans"))
    extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    stage(build_ctx, document("a", "Délai de retour : 30 jours"))
    report = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert report.documents_removed == ["b"] and report.retracted == 1
    assert set(sql_store.source_states(build_ctx.settings.tenant_id, NAMESPACE)) == {"a"}


def test_rejected_entity_types_are_ignored_by_later_extractions(build_ctx, sql_store):
    fact = {"subject": "widget", "predicate": "poids", "value": 3, "unit": "kg", "entity_type": "Gizmo"}
    stage(build_ctx, document("a", "v1", facts=[fact]))
    first = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert first.entity_types_pending == ["Gizmo"] and first.new_facts == 1
    review.decide_entity_type(sql_store, build_ctx.settings.tenant_id, "Gizmo", False, "admin")
    stage(build_ctx, document("a", "v2", facts=[fact, {**fact, "predicate": "taille", "unit": "mm"}]))
    second = extract_namespace_facts(build_ctx, NAMESPACE, sql_store)
    assert second.new_facts == 0 and second.ignored_rejected_type == 2


# -- the real sample corpus -----------------------------------------------------------------
def test_sample_corpus_yields_the_policy_facts(corpus_facts):
    _, store, reports = corpus_facts
    policies = store.list_facts("default", namespace="knowledge:policies")
    found = {(f.subject, f.predicate, f.value, f.unit, f.valid_from, f.valid_until) for f in policies}
    jan_2026 = dt.date(2026, 1, 1)
    for expected in [
        ("retour produit", "délai de retour", 30.0, "day", jan_2026, None),
        ("garantie des pièces", "durée de garantie", 2.0, "year", jan_2026, None),
        ("livraison gratuite", "seuil minimum d'achat", 59.0, "EUR", jan_2026, None),
        ("livraison gratuite", "seuil minimum d'achat", 49.0, "EUR", dt.date(2024, 1, 1), dt.date(2025, 12, 31)),
        ("remboursement", "délai de remboursement après réception du retour", 14.0, "business_day", jan_2026, None),
    ]:
        assert expected in found, expected
    assert {f.status for f in policies} <= {PROPOSED, CONFLICTED}
    assert all(f.source_chunk_id for f in policies if f.extraction_method != "front_matter")
    report = reports["knowledge:policies"]
    assert report.critical_conflicts == 0 and report.problems == []
    assert report.open_conflicts.get(DUPLICATES, 0) > 0  # the same rule stated in several documents
    assert all(not r.problems for r in reports.values())


def test_sample_corpus_archive_does_not_contradict_the_current_rule(corpus_facts):
    _, store, _ = corpus_facts
    thresholds = store.list_facts("default", subject_key="livraison gratuite", predicate_key="seuil minimum d'achat")
    relations = store.list_relations("default", fact_ids=[f.id for f in thresholds])
    assert CONTRADICTS not in {r.kind for r in relations}


def test_sample_corpus_second_run_creates_nothing(corpus_facts):
    ctx, store, reports = corpus_facts
    again = extract_namespace_facts(ctx, "knowledge:policies", store)
    assert again.new_facts == 0 and again.documents_extracted == 0
    assert again.documents_unchanged == reports["knowledge:policies"].documents


def test_untyped_percentages_and_amounts_never_make_a_critical_conflict(tmp_path):
    """Command output and prices the ontology does not name must not block a promotion."""
    from knowledge_plane.facts.config import load_rules
    from knowledge_plane.facts.conflicts import detect
    from knowledge_plane.facts.extract import DocumentContext, extract_document

    def facts_of(doc_id: str, text: str):
        doc = {"doc_id": doc_id, "doc_version": "v1", "content_hash": doc_id * 4, "namespace": "knowledge:guides",
               "source_path": f"{doc_id}.md", "title": doc_id, "truth_level": "L2", "updated": "2026-01-01",
               "meta": {}, "sections": [{"heading_path": ["x"], "text": text, "location": "§ x", "kind": "prose"}]}
        return extract_document(DocumentContext("default", doc, [])).facts

    first = facts_of("raid-a", "Rebuild Status : 13% complete\nPrix indicatif : 12 €")
    second = facts_of("raid-b", "Rebuild Status : 47% complete\nPrix indicatif : 15 €")
    assert first and second
    rules = load_rules()
    assert not {f.fact_type for f in first + second} & rules.critical_fact_types
    relations = [r for f in second for r in detect(f, first, rules)]
    assert not [r for r in relations if r.severity == "critical"]


def test_a_new_named_entity_is_pending_and_its_conflicts_never_block():
    from knowledge_plane.facts.config import load_ontology, load_rules
    from knowledge_plane.facts.conflicts import classify
    from knowledge_plane.facts.nlp import ENTITY_TYPES

    (first,) = facts_of(document("a", "Le SLA de Microsoft 365 est de 99,9 %."))
    (second,) = facts_of(document("b", "Le SLA de Microsoft 365 est de 99,5 %."))
    rules = load_rules()
    assert first.subject == "Microsoft 365" and first.entity_type in ENTITY_TYPES.values()
    assert first.entity_type not in load_ontology().entity_types  # registered as pending by the pipeline
    assert first.confidence < rules.low_confidence
    (relation,) = classify(first, second, rules)
    assert relation.kind == "CONTRADICTS" and relation.severity != "critical"


def test_aliases_of_the_ontology_resolve_to_one_subject():
    texts = ["Le SLA de SAP S/4HANA Cloud est de 99,7 %.", "Le SLA de S/4HANA Cloud est de 99,7 %.",
             "La disponibilité garantie de la plateforme S/4HANA est de 99,7 %."]
    keys = {f.subject_key for n, t in enumerate(texts) for f in facts_of(document(f"d{n}", t))}
    assert keys == {"sap s 4hana cloud"}


def test_the_french_model_is_loaded_only_for_a_statement_with_a_quantity(monkeypatch):
    from knowledge_plane.facts import nlp
    from knowledge_plane.facts.extract import extract_documents

    def no_model():
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(nlp, "french_pipeline", no_model)
    assert extract_documents([]) == []  # nothing changed: nothing loaded
    docs = [document("a", "Bonjour, voici notre politique.", facts=[
        {"subject": "retour produit", "predicate": "délai de retour", "value": 30, "unit": "jours"}]),
        document("b", "Délai de retour : 30 jours")]
    results = extract_documents([DocumentContext("t", d) for d in docs])
    assert [len(r.facts) for r in results] == [1, 1]
