"""extracted_facts: facts from each namespace's changed documents, with conflicts detected and stored."""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build.facts import extract_namespace_facts
from knowledge_plane.facts.store import open_fact_store
from resources import KnowledgeBase


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="facts",
    kinds={"sql", "neo4j"},
    deps=["document_chunks"],
    description="Facts (subject, predicate, value, unit, validity, source) extracted by rules — front matter, "
    "'Clé : valeur' lines, key/value tables, French statements read with spaCy's fr_core_news_md (never code, "
    "URLs or placeholders) — and by an LLM when one is configured, "
    "only from documents whose hash changed; stored as proposed, with CONTRADICTS / OVERRIDES / DUPLICATES / "
    "OUTDATED relations for reviewers. Approved facts are published with the next index version.",
)
def extracted_facts(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    with open_fact_store(ctx.settings) as store:
        records = [extract_namespace_facts(ctx, ns, store, log=context.log.info) for ns in context.partition_keys]
    new = [{"namespace": r["namespace"], **f} for r in records for f in r["new_fact_list"]][:50]
    return dg.MaterializeResult(
        metadata={
            "fact_store": ctx.settings.facts.store,
            "documents_extracted": sum(r["documents_extracted"] for r in records),
            "documents_unchanged": sum(r["documents_unchanged"] for r in records),
            "new_facts": sum(r["new_facts"] for r in records),
            "critical_conflicts": sum(r["critical_conflicts"] for r in records),
            "llm_tokens": sum(r["llm"].get("tokens", 0) or 0 for r in records),
            "low_confidence_facts": sum(r["low_confidence_facts"] for r in records),
            "documents_per_second": _rate(sum(r["documents_extracted"] for r in records),
                                          sum(r["rules_seconds"] for r in records)),
            "namespaces": md_table(
                [
                    {
                        "namespace": r["namespace"],
                        "documents": r["documents"],
                        "extracted": r["documents_extracted"],
                        "new_facts": r["new_facts"],
                        "by_status": r["facts_by_status"],
                        "open_conflicts": r["open_conflicts"],
                    }
                    for r in records
                ],
                ["namespace", "documents", "extracted", "new_facts", "by_status", "open_conflicts"],
            ),
            "new_fact_list": md_table(new, ["namespace", "subject", "predicate", "object", "fact_type", "source"]),
            "seconds": round(sum(r["seconds"] for r in records), 3),
        }
    )


def _rate(documents: int, seconds: float) -> float | None:
    """Documents per second of rule extraction; None when nothing was extracted."""
    return round(documents / seconds, 1) if documents and seconds > 0 else None
