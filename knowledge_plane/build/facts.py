"""The build step for facts: extract a namespace's changed documents, store, retract, detect conflicts.

Incremental by content hash: a document whose content hash and extractor version match what the
store recorded at its last extraction is not read again, so an unchanged corpus creates nothing.
A changed document's facts that it no longer states are retracted (rejected with a reason) unless
a reviewer approved them — those stay, and the new statement meets them as a conflict to decide.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from knowledge_plane.build.records import ChunksRecord, FactsRecord, ParsedRecord
from knowledge_plane.build.stages import BuildContext, StageMissing
from knowledge_plane.facts.config import config_digest, load_ontology, load_rules
from knowledge_plane.facts.extract import RULES_EXTRACTOR, DocumentContext, extract_documents, merge_candidates
from knowledge_plane.facts.gate import critical_conflicts, open_relations
from knowledge_plane.facts.llm import LLMConfig, LLMExtractor, TokenBudget
from knowledge_plane.facts.model import (
    CONFLICTED,
    PROPOSED,
    REJECTED,
    TYPE_APPROVED,
    TYPE_PENDING,
    TYPE_REJECTED,
    AuditEntry,
    Fact,
    SourceState,
)
from knowledge_plane.facts.review import RETRACTED, detect_and_store, reject
from knowledge_plane.facts.store import FactStore

ACTOR = "extraction"
# What the extractors read of a chunk (``Chunk.to_dict()`` names): which one holds a statement.
_CHUNK_COLUMNS = ["chunk_id", "doc_id", "text"]
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def extractor_version() -> str:
    """Rules extractor version plus a digest of ontology.yaml and rules.yaml."""
    return f"{RULES_EXTRACTOR}+{config_digest()}"


def extract_namespace_facts(ctx: BuildContext, namespace: str, store: FactStore, *,
                            llm: LLMExtractor | None = None, log: Log = _quiet) -> FactsRecord:
    """Extract, store and check the facts of one namespace from its run's ``parsed_documents`` record.

    Only documents whose content hash (or the extractor version) changed since their last
    extraction are read; the LLM extractor, when configured (or given), runs only on documents
    whose content changed since its own last pass, within one token budget for the run. Writes and
    returns the run's ``extracted_facts`` record: document and fact counts, facts by status/type/method, new facts,
    low-confidence facts, documents and facts per second of rule extraction,
    new and open conflicts by kind, critical conflicts, retractions, entity types pending review,
    LLM tokens and estimated cost, problems, seconds.
    """
    started = time.perf_counter()
    tenant_id = ctx.settings.tenant_id
    parsed = ctx.stages.read(ParsedRecord, namespace)
    try:  # where a fact was found: the chunk ids and texts, not the rest of the payload
        chunks = ctx.stages.rows(ChunksRecord, namespace, _CHUNK_COLUMNS)
    except StageMissing:
        chunks = []  # facts then carry no chunk id; everything else works
    chunks_by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in chunks:
        chunks_by_doc[chunk["doc_id"]].append(chunk)
    if llm is None:
        config = LLMConfig.of(ctx.settings.llm)
        llm = LLMExtractor(config) if config.enabled else None
    budget: TokenBudget | None = llm.new_budget() if llm else None
    version = extractor_version()
    ontology = load_ontology()
    rules = load_rules()
    states = store.source_states(tenant_id, namespace)
    documents = parsed.documents
    present = {d["doc_id"] for d in documents}

    extracted: list[Fact] = []
    new_states: list[SourceState] = []
    problems: list[str] = []
    retract: dict[str, str] = {}
    unchanged = 0
    due: list[tuple[dict[str, Any], SourceState | None, bool]] = []
    for doc in documents:
        state = states.get(doc["doc_id"])
        content_hash = doc["content_hash"]
        rules_due = state is None or state.content_hash != content_hash or state.extractor_version != version
        llm_due = llm is not None and (state is None or state.llm_content_hash != content_hash)
        if rules_due or llm_due:
            due.append((doc, state, llm_due))
        else:
            unchanged += 1
    # One batch for the rules (one nlp.pipe over every changed document's statements); the French
    # model is loaded only here, so a run with nothing changed never loads it.
    contexts = [DocumentContext(tenant_id, doc, chunks_by_doc.get(doc["doc_id"], [])) for doc, _, _ in due]
    rules_started = time.perf_counter()
    results = extract_documents(contexts)
    rules_seconds = time.perf_counter() - rules_started
    for (doc, state, llm_due), dctx, result in zip(due, contexts, results, strict=True):
        doc_id, content_hash = doc["doc_id"], doc["content_hash"]
        problems.extend(result.problems)
        found = list(result.facts)
        llm_ran = False
        if llm is not None and llm_due and budget is not None:
            llm_result = llm.extract(dctx, budget)
            problems.extend(llm_result.problems)
            llm_ran = doc_id not in budget.skipped
            found.extend(llm_result.facts)
        found = merge_candidates(found)
        extracted.extend(found)
        new_states.append(SourceState(
            doc_id, content_hash, version,
            llm_content_hash=content_hash if llm_ran else (state.llm_content_hash if state else None),
            llm_model=llm.config.model if llm_ran and llm else (state.llm_model if state else None),
            facts=len(found)))
        ids = {f.id for f in found}
        for held in store.list_facts(tenant_id, namespace=namespace, source_document=doc_id,
                                     statuses=[PROPOSED, CONFLICTED]):
            # facts of a model that did not run this time are not evidence of a retraction
            if held.id not in ids and (llm_ran or held.extraction_method != "llm"):
                retract[held.id] = f"{RETRACTED}no longer in {doc_id}@{doc['doc_version']}"
        log(f"{namespace}: {doc_id}: {len(found)} facts")

    removed_docs = sorted(set(states) - present)
    for doc_id in removed_docs:
        for held in store.list_facts(tenant_id, namespace=namespace, source_document=doc_id,
                                     statuses=[PROPOSED, CONFLICTED]):
            retract[held.id] = f"{RETRACTED}{doc_id} left {namespace}"

    # Entity types: register what was seen; facts about a rejected type are ignored from now on.
    seen_types = {f.entity_type for f in extracted if f.entity_type}
    type_status = store.register_entity_types(tenant_id, {
        t: TYPE_APPROVED if t in ontology.entity_types else TYPE_PENDING for t in sorted(seen_types)})
    ignored = [f for f in extracted if f.entity_type and type_status.get(f.entity_type) == TYPE_REJECTED]
    extracted = [f for f in extracted if not (f.entity_type and type_status.get(f.entity_type) == TYPE_REJECTED)]

    new_ids = set(store.upsert_facts(tenant_id, extracted))
    if new_ids:
        store.append_audit(tenant_id, [AuditEntry(tenant_id, "created", ACTOR, f.id, detail={
            "method": f.extraction_method, "source": f.source, "object": f.object})
            for f in extracted if f.id in new_ids])
    revived = _revive(store, tenant_id, [f.id for f in extracted if f.id not in new_ids])
    for fact_id in [f.id for f in extracted]:
        retract.pop(fact_id, None)
    for reason in sorted(set(retract.values())):
        reject(store, tenant_id, [i for i, r in retract.items() if r == reason], reason, ACTOR)

    to_check = store.get_facts(tenant_id, list(new_ids | set(revived)))
    new_relations = detect_and_store(store, tenant_id, to_check, actor=ACTOR)
    if removed_docs:
        store.delete_source_states(tenant_id, namespace, removed_docs)
    store.set_source_states(tenant_id, namespace, new_states)

    open_now = open_relations(store, tenant_id, namespace)
    new_facts = [f for f in extracted if f.id in new_ids]
    record = ctx.stages.write(FactsRecord(
        namespace=namespace, tenant_id=tenant_id, extractor_version=version,
        documents=len(documents), documents_extracted=len(new_states), documents_unchanged=unchanged,
        documents_removed=removed_docs, facts_extracted=len(extracted), new_facts=len(new_facts),
        new_fact_list=[{"id": f.id, "subject": f.subject, "predicate": f.predicate, "object": f.object,
                        "fact_type": f.fact_type, "source": f.source, "method": f.extraction_method}
                       for f in new_facts[:200]],
        retracted=len(retract), revived=len(revived), ignored_rejected_type=len(ignored),
        facts_by_status=store.count_facts(tenant_id, "status", namespace=namespace),
        facts_by_type=store.count_facts(tenant_id, "fact_type", namespace=namespace),
        extracted_by_method=dict(Counter(f.extraction_method for f in extracted)),
        low_confidence_facts=sum(f.confidence < rules.low_confidence for f in extracted),
        rules_seconds=round(rules_seconds, 3),
        documents_per_second=round(len(due) / rules_seconds, 1) if rules_seconds > 0 and due else None,
        facts_per_second=round(len(extracted) / rules_seconds, 1) if rules_seconds > 0 and due else None,
        new_conflicts=dict(Counter(r.kind for r in new_relations)),
        open_conflicts=dict(Counter(r.kind for r in open_now)),
        critical_conflicts=len(critical_conflicts(store, tenant_id, namespace)),
        entity_types_pending=sorted(t for t, s in type_status.items() if s == TYPE_PENDING),
        llm={"enabled": llm is not None, "model": llm.config.model if llm else None,
             **(budget.summary() if budget else {})},
        problems=problems,
        seconds=round(time.perf_counter() - started, 3),
    ))
    log(f"{namespace}: {record.new_facts} new facts, {len(new_relations)} new relations, "
        f"{record.critical_conflicts} critical conflicts")
    return record


def _revive(store: FactStore, tenant_id: str, ids: list[str]) -> list[str]:
    """Facts retracted earlier that a document states again go back to ``proposed``."""
    back = [f for f in store.get_facts(tenant_id, ids)
            if f.status == REJECTED and (f.reason or "").startswith(RETRACTED)]
    if back:
        store.update_facts(tenant_id, {f.id: {"status": PROPOSED, "reason": None} for f in back})
        store.append_audit(tenant_id, [AuditEntry(tenant_id, "revived", ACTOR, f.id, detail={"before": f.reason})
                                       for f in back])
    return [f.id for f in back]
