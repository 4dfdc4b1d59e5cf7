"""index_versions: an immutable, checked version per namespace; its checks gate each namespace's alias.

A run covers many namespaces in one step, and a failing blocking check fails the whole step: one
failing namespace would hold back every other. So these checks are partitioned by namespace and not
blocking: each namespace's result is its own partition's (red for that namespace only), the step
succeeds, and index_aliases promotes exactly the namespaces whose version passed.
"""

import dagster as dg

from assets.stage import CheckOutcome, NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.checks import CHECKS
from knowledge_plane.build.evaluation import evaluation_metadata
from knowledge_plane.build.records import IndexVersionRecord
from knowledge_plane.storage.index_store import INDEX_FORMAT_VERSION

_GATE = " Per namespace: a namespace that fails it is not promoted; the others are."


def check_outcomes(record: IndexVersionRecord) -> list[CheckOutcome]:
    """The namespace's result of every check in ``CHECKS`` (generic: a check added to the stage's records
    and to ``CHECKS`` needs nothing else here)."""
    return [
        CheckOutcome(c["name"], c["passed"], c["detail"], {"version": record.version or "", "detail": c["detail"]})
        for c in record.checks
        if c["name"] in CHECKS
    ]


@stage_asset(
    group="indexing",
    kinds={"numpy", "sqlite"},
    code_version=INDEX_FORMAT_VERSION,
    deps=["chunk_embeddings", "extracted_facts"],
    # Not blocking: the gate is per namespace, in index_aliases and in the registry (which refuses a
    # failed version); a blocking check would fail the step, i.e. every namespace of the run at once.
    check_specs=[(name, description + _GATE, False) for name, description in CHECKS.items()],
    description="Memory-mappable vectors, payloads and a manifest (model, dimension, chunker version, source "
    "commit and hashes, counts, check results) written once per namespace content; unchanged content reuses "
    "its existing version. Its checks gate each namespace on its own: a namespace that fails one is held back "
    "by index_aliases, the others are promoted.",
)
def index_versions(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    records, failed = each_namespace(context, lambda ns: build.index_versions(ctx, ns, log=context.log.info))
    return failed | {
        r.namespace: NamespaceResult(
            {
                "version": r.version or "",
                "new": r.new,
                "chunks": r.chunks,
                "documents": r.documents,
                "checks_passed": r.checks_passed,
                "failed_checks": ", ".join(c["name"] for c in r.checks if not c["passed"]),
                "seconds": round(r.seconds, 3),
                **evaluation_metadata(r),  # evaluation/<figure>: plotted across the partition's runs
                # the Great Expectations Data Docs of the data_quality check, beside the version
                **({"data_docs": dg.MetadataValue.path(r.data_docs)} if r.data_docs else {}),
            },
            check_outcomes(r),
        )
        for r in records.values()
    }
