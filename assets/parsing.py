"""parsed_documents: Docling, FAQ JSON, the PDF text layer and Python's ast, with quarantine."""

import dagster as dg

from assets.metadata import per_second, quarantine_table
from assets.stage import NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.parsing import PARSER_VERSION


@stage_asset(
    group="parsing",
    kinds={"docling", "python"},
    code_version=PARSER_VERSION,
    deps=["raw_documents"],
    reads_uploads=True,
    description="Each raw document parsed into sections under their heading path (front matter read first); "
    "a file whose hash is unchanged is taken from the parse cache; bad input is quarantined with its reason.",
)
def parsed_documents(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    records, failed = each_namespace(context, lambda ns: build.parsed_documents(ctx, ns, log=context.log.warning))
    return failed | {
        r.namespace: NamespaceResult({
            "documents": len(r.documents),
            "parsed_now": r.parsed,
            "from_cache": r.from_cache,
            "quarantined": len(r.quarantined),
            "quarantined_files": quarantine_table(r),
            "documents_per_second": per_second(r.parsed, r.seconds),
            "parsers": ", ".join(r.parsers),
            "parser_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in r.notes) or "_none_"),
            "seconds": round(r.seconds, 3),
        })
        for r in records.values()
    }
