"""extracted_facts: facts from each namespace's changed documents, with conflicts detected and stored."""

import dagster as dg

from assets.metadata import per_second, table
from assets.stage import NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build.facts import extract_namespace_facts, extractor_version
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.facts.store import open_fact_store

NEW_FACT_COLUMNS = {
    "subject": "string", "predicate": "string", "object": "string", "fact_type": "string", "source": "string",
}


@stage_asset(
    group="facts",
    kinds={"sql", "neo4j"},
    # the rules extractor's version and a digest of ontology.yaml and rules.yaml: editing a rule marks it stale
    code_version=extractor_version(),
    deps=["document_chunks"],
    description="Facts (subject, predicate, value, unit, validity, source) extracted by rules — front matter, "
    "'Clé : valeur' lines, key/value tables, French statements read with spaCy's fr_core_news_md (never code, "
    "URLs or placeholders) — and by an LLM when one is configured, "
    "only from documents whose hash changed; stored as proposed, with CONTRADICTS / OVERRIDES / DUPLICATES / "
    "OUTDATED relations for reviewers. Approved facts are published with the next index version.",
)
def extracted_facts(context: dg.AssetExecutionContext, ctx: BuildContext) -> dict[str, NamespaceResult]:
    with open_fact_store(ctx.settings) as store:
        records, failed = each_namespace(
            context, lambda ns: extract_namespace_facts(ctx, ns, store, log=context.log.info)
        )
    return failed | {
        r.namespace: NamespaceResult({
            "fact_store": ctx.settings.facts.store,
            "extractor_version": r.extractor_version,
            "documents": r.documents,
            "documents_extracted": r.documents_extracted,
            "documents_unchanged": r.documents_unchanged,
            "new_facts": r.new_facts,
            "critical_conflicts": r.critical_conflicts,
            "llm_tokens": r.llm.get("tokens", 0) or 0,
            "low_confidence_facts": r.low_confidence_facts,
            "documents_per_second": per_second(r.documents_extracted, r.rules_seconds),
            "facts_by_status": dg.MetadataValue.json(r.facts_by_status),
            "open_conflicts": dg.MetadataValue.json(r.open_conflicts),
            "new_fact_list": table(r.new_fact_list[:50], NEW_FACT_COLUMNS),
            "seconds": round(r.seconds, 3),
        })
        for r in records.values()
    }
