"""``knowledge query | serve``: the runtime plane from a terminal.

``query`` answers in-process from the versions the aliases point to, with the same engine, the
same grants and the same response as ``POST /knowledge/query`` (no API key: it runs on the
machine that holds the data, as the named actor). Its text lists the passages by score, highest
first; ``--explain`` adds why the gate answered, asked for clarification or turned the question
away (each leading candidate's score against its namespace's threshold), which ``--json`` always
carries as ``explain`` beside the API's response. ``serve`` runs the HTTP service under uvicorn.
"""

from __future__ import annotations

import json
import textwrap
import time
from types import SimpleNamespace
from typing import Any

import click

from knowledge_plane.cli.commands import command, json_flag
from knowledge_plane.cli.output import emit, emit_line, fail
from knowledge_plane.serving.access import ACTORS

SNIPPET_CHARS = 200


def register(root: click.Group) -> None:
    root.add_command(command(
        "query", cmd_query, "Ask a question as an actor, from the published (@latest) versions.",
        click.Argument(["question"]),
        click.Option(["--actor"], required=True, type=click.Choice(sorted(ACTORS)),
                     help="Whose namespace grant to use."),
        click.Option(["--namespace"], multiple=True, metavar="NS",
                     help="Narrow to this granted namespace (repeatable)."),
        click.Option(["--pack-id"], multiple=True, metavar="PACK", help="Only passages of this pack (repeatable)."),
        click.Option(["--top-k"], type=int, metavar="K", default=5, show_default=True,
                     help="Passages returned at most (1-20)."),
        click.Option(["--explain"], is_flag=True,
                     help="Show why the gate decided: the candidates' scores, the thresholds, the reason."),
        json_flag("Print the API's JSON response, with the explanation under 'explain'."),
    ))
    root.add_command(command(
        "serve", cmd_serve, "Run the read-only query service (FastAPI under uvicorn).",
        click.Option(["--host"], metavar="HOST", default="127.0.0.1", show_default=True),
        click.Option(["--port"], type=int, metavar="PORT", default=8000, show_default=True),
        json_flag("Print where the service listens as JSON before serving."),
    ))


def render(response: dict[str, Any], explain: dict[str, Any] | None = None) -> str:
    """The answer as text: passages by score (highest first), then facts, suggestions and, when
    asked, the gate's explanation."""
    lines = [f"status: {response['status']}   confidence: {response['confidence']:.2f}   "
             f"request: {response['request_id']}"]
    if response["index_versions"]:
        lines.append("searched: " + ", ".join(f"{ns}@{v}" for ns, v in sorted(response["index_versions"].items())))
    if response.get("message"):
        lines.append(textwrap.fill(response["message"], 100))
    by_score = sorted(response["passages"], key=lambda p: -p["score"])
    for rank, p in enumerate(by_score, start=1):
        lines.append(f"{rank:>2}. {p['score']:.3f}  {p['citation']}  {p['namespace']}  {p['truth_level']}  "
                     f"{p['title']}")
        snippet = " ".join(p["text"].split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        lines.append(textwrap.indent(textwrap.fill(snippet, 96), "    "))
    for fact in response["facts"]:
        lines.append(f"fact: {json.dumps(fact, ensure_ascii=False, default=str)}")
    if response["suggestions"]:
        lines.append("suggestions:")
        lines.extend(f"  - {s}" for s in response["suggestions"])
    if explain is not None:
        lines.extend(render_explanation(explain))
    return "\n".join(lines)


def render_explanation(explain: dict[str, Any]) -> list[str]:
    lines = [f"why {explain['status']}: {explain['reason']}"]
    if explain["thresholds"]:
        lines.append("thresholds: " + ", ".join(f"{ns} {t:.2f}" for ns, t in explain["thresholds"].items())
                     + f"   (at least {explain['min_passages']} must clear; success from confidence "
                     f"{explain['low_confidence_below']:.2f})")
    if explain["best_candidates"]:
        lines.append(f"best candidates by relevance, else score ({explain['above_threshold']} of "
                     f"{explain['candidates']} cleared their threshold; the first --top-k of those in fused rank "
                     f"are returned):")
    if any(c.get("relevance") is not None for c in explain["best_candidates"]):
        lines.append(f"relevance threshold: {explain['relevance_threshold']:.3f} (versions with relevance vectors: one "
                     f"passage reaching it is enough; shown from {explain['relevance_floor']:.3f}, the best less "
                     f"the spread)")
    for c in explain["best_candidates"]:
        verdict = ("returned" if c["returned"] else "cleared") if c["cleared"] else "below"
        sign = "≥" if c["cleared"] else "<"
        gate = (f"{c['score']:.3f} {sign} {c['threshold']:.2f}" if c.get("relevance") is None else
                f"relevance {c['relevance']:.3f} {sign} {explain['relevance_floor']:.3f}  score {c['score']:.3f}")
        lines.append(f"  {gate} {verdict:<8}  "
                     f"cosine {c['cosine']:.3f}  coverage {c['coverage']:.2f}  {c['namespace']}  {c['citation']}"
                     f"{' ' + c['location'] if c['location'] else ''}  {c['title']}")
    return lines


def cmd_query(args: SimpleNamespace) -> int:
    from knowledge_plane.cli.namespaces import namespace_problem
    from knowledge_plane.service.schemas import QueryResponse
    from knowledge_plane.serving.config import retrieval_config
    from knowledge_plane.serving.query_encoder import QueryEncoder
    from knowledge_plane.serving.query_engine import NamespacesQuarantined, QueryEngine, QueryRequest
    from knowledge_plane.serving.snapshot import load_snapshot
    from knowledge_plane.storage.registry import Registry, append_query_log
    from knowledge_plane.storage.vector_backends import open_vector_backend

    if not 1 <= len(args.question) <= 1000:
        return fail("the question must be 1 to 1000 characters long", args.json, code=2)
    if not 1 <= args.top_k <= 20:
        return fail("--top-k must be between 1 and 20", args.json, code=2)
    try:
        settings = args.settings
        config = retrieval_config(settings.service)
        backend = open_vector_backend(settings, read_only=True)  # None: the local version files
    except ValueError as exc:
        return fail(str(exc), args.json)
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    try:
        for namespace in args.namespace:
            if problem := namespace_problem(settings, registry, namespace):
                return fail(problem, args.json)
        snapshot, checks = load_snapshot(registry, backend=backend)
        if snapshot is None:
            failed = "; ".join(f"{c.namespace or '-'} {c.name}: {c.detail}" for c in checks if not c.passed)
            return fail(f"nothing to answer from (quarantined): {failed}", args.json)
        started = time.perf_counter()
        engine = QueryEngine(QueryEncoder(torch_threads=None, backend=settings.build.embedding_backend,
                                           cache_dir=settings.paths.cache_dir), config, settings.tenant_id)
        request = QueryRequest(question=args.question, namespaces=tuple(args.namespace),
                               pack_ids=tuple(args.pack_id) if args.pack_id else None, top_k=args.top_k)
        who = ACTORS[args.actor]
        try:
            outcome = engine.answer(snapshot, who, request)
        except NamespacesQuarantined as exc:
            return fail(str(exc), args.json)
    finally:
        if backend is not None:
            backend.close()
    response = QueryResponse.model_validate(outcome.response).model_dump(mode="json")
    append_query_log(registry, [outcome.log_entry(who, request, (time.perf_counter() - started) * 1000)])
    explain = engine.explain(outcome)
    if args.json:
        emit(True, {**response, "explain": explain}, render)
    else:
        emit(False, response, lambda r: render(r, explain if args.explain else None))
    return 0


def cmd_serve(args: SimpleNamespace) -> int:
    import uvicorn

    from knowledge_plane.service.app import UVICORN_OPTIONS, create_app
    from knowledge_plane.service.logging import configure_json_logging

    configure_json_logging()
    try:
        app = create_app(args.settings)
    except ValueError as exc:  # KNOWLEDGE_API_KEYS or another setting is wrong: say so before listening
        return fail(str(exc), args.json)
    if args.json:
        emit_line({"url": f"http://{args.host}:{args.port}", "docs": f"http://{args.host}:{args.port}/docs"})
    # log_config=None: uvicorn keeps the JSON handler rather than installing its text ones
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, **UVICORN_OPTIONS)
    return 0
