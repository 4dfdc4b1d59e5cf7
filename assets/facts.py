"""extracted_facts: facts from each namespace's changed documents, with conflicts detected and stored."""

import dagster as dg

from assets.metadata import per_second, table, total
from assets.stage import stage_asset
from knowledge_plane.build.facts import extract_namespace_facts
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.facts.store import open_fact_store

NAMESPACE_COLUMNS = {
    "namespace": "string", "documents": "int", "extracted": "int", "new_facts": "int", "by_status": "string",
    "open_conflicts": "string",
}
NEW_FACT_COLUMNS = {
    "namespace": "string", "subject": "string", "predicate": "string", "object": "string", "fact_type": "string",
    "source": "string",
}


@stage_asset(
    group="facts",
    kinds={"sql", "neo4j"},
    deps=["document_chunks"],
    description="Facts (subject, predicate, value, unit, validity, source) extracted by rules — front matter, "
    "'Clé : valeur' lines, key/value tables, French statements read with spaCy's fr_core_news_md (never code, "
    "URLs or placeholders) — and by an LLM when one is configured, "
    "only from documents whose hash changed; stored as proposed, with CONTRADICTS / OVERRIDES / DUPLICATES / "
    "OUTDATED relations for reviewers. Approved facts are published with the next index version.",
)
def extracted_facts(context: dg.AssetExecutionContext, ctx: BuildContext) -> dict:
    with open_fact_store(ctx.settings) as store:
        records = [extract_namespace_facts(ctx, ns, store, log=context.log.info) for ns in context.partition_keys]
    new = [{"namespace": r.namespace, **f} for r in records for f in r.new_fact_list][:50]
    return {
        "fact_store": ctx.settings.facts.store,
        "documents_extracted": total(records, "documents_extracted"),
        "documents_unchanged": total(records, "documents_unchanged"),
        "new_facts": total(records, "new_facts"),
        "critical_conflicts": total(records, "critical_conflicts"),
        "llm_tokens": sum(r.llm.get("tokens", 0) or 0 for r in records),
        "low_confidence_facts": total(records, "low_confidence_facts"),
        "documents_per_second": per_second(total(records, "documents_extracted"), total(records, "rules_seconds")),
        "namespaces": table(
            (
                {
                    "namespace": r.namespace,
                    "documents": r.documents,
                    "extracted": r.documents_extracted,
                    "new_facts": r.new_facts,
                    "by_status": r.facts_by_status,
                    "open_conflicts": r.open_conflicts,
                }
                for r in records
            ),
            NAMESPACE_COLUMNS,
        ),
        "new_fact_list": table(new, NEW_FACT_COLUMNS),
        "seconds": round(total(records, "seconds"), 3),
    }
