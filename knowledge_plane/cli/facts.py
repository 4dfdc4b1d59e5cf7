"""``knowledge facts …``: review proposed facts, settle conflicts, query the timeline, manage entity types.

Every command prints JSON with --json and exits non-zero with a specific message on bad input
(unknown id, bad date, a conflict that must be resolved first). The fact store and the review
modules are imported by the handlers, so that registering the commands costs ``knowledge --help`` nothing.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from knowledge_plane.cli.commands import command, group, json_flag
from knowledge_plane.cli.output import emit, fail, table
from knowledge_plane.facts.model import OPEN, PROPOSED, RELATION_KINDS, STATUSES, TYPE_STATUSES, Fact

if TYPE_CHECKING:
    from knowledge_plane.facts.store import FactStore

Handler = Callable[[SimpleNamespace, "FactStore", str], int]


def _actor(args: SimpleNamespace) -> str:
    return getattr(args, "by", None) or getpass.getuser() or "cli"


def _short(fact_id: str) -> str:
    return fact_id[:8]


def _fact_rows(facts: list[Fact]) -> str:
    rows = [[_short(f.id), f.status, f.subject, f.predicate, f.object, f.to_dict()["valid_from"] or "-",
             f.to_dict()["valid_until"] or "-", f.source, f.confidence] for f in facts]
    header = ["ID", "STATUS", "SUBJECT", "PREDICATE", "VALUE", "FROM", "UNTIL", "SOURCE", "CONF"]
    return table(rows, header) + f"\n{len(facts)} fact(s)"


def _store_errors() -> tuple[type[BaseException], ...]:
    import sqlalchemy.exc

    errors: list[type[BaseException]] = [sqlalchemy.exc.SQLAlchemyError]
    try:
        from neo4j.exceptions import DriverError, Neo4jError

        errors += [DriverError, Neo4jError]
    except ImportError:  # the neo4j driver is only needed with KNOWLEDGE_FACT_STORE=neo4j
        pass
    return tuple(errors)


def _run(handler: Handler) -> Callable[[SimpleNamespace], int]:
    def wrapped(args: SimpleNamespace) -> int:
        from knowledge_plane.facts.store import UnknownFact, open_fact_store

        try:
            settings = args.settings
            args.by = getattr(args, "by", None) or settings.facts.reviewer  # --by, else KNOWLEDGE_REVIEWER
            store = open_fact_store(settings)
        except ValueError as exc:
            return fail(str(exc), args.json)
        except _store_errors() as exc:
            return fail(f"cannot open the fact store: {exc}", args.json)
        try:
            return handler(args, store, settings.tenant_id)
        except (UnknownFact, ValueError) as exc:  # ReviewError and DateError are ValueErrors
            return fail(str(exc).strip("'\""), args.json)
        except _store_errors() as exc:
            return fail(f"fact store error: {exc}", args.json)
        finally:
            store.close()

    return wrapped


# -- list / show ----------------------------------------------------------------------------
def _list(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts.queries import canonical_key

    if args.conflicts:
        return _list_conflicts(args, store, tenant)
    subject_key = predicate_key = None
    if args.subject or args.predicate:
        subject_key, predicate_key = canonical_key(args.subject or "", args.predicate or "")
    facts = store.list_facts(tenant, namespace=args.namespace, statuses=args.status or None,
                             subject_key=subject_key if args.subject else None,
                             predicate_key=predicate_key if args.predicate else None,
                             fact_type=args.type, limit=args.limit)
    emit(args.json, [f.to_dict() for f in facts], lambda _: _fact_rows(facts))
    return 0


def _list_conflicts(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts.gate import open_relations

    kinds = args.kind or list(RELATION_KINDS)
    if args.namespace:
        relations = open_relations(store, tenant, args.namespace, kinds)
    else:
        relations = store.list_relations(tenant, kinds=kinds, status=OPEN)
    facts = {f.id: f for f in store.get_facts(tenant, {i for r in relations for i in (r.from_id, r.to_id)})}
    data = []
    for relation in relations:
        entry = relation.to_dict()
        entry["from"] = facts[relation.from_id].to_dict() if relation.from_id in facts else None
        entry["to"] = facts[relation.to_id].to_dict() if relation.to_id in facts else None
        data.append(entry)

    def render(_: Any) -> str:
        rows = [[r.kind, r.severity, r.value_diff_pct if r.value_diff_pct is not None else "-",
                 _short(r.from_id), facts[r.from_id].object if r.from_id in facts else "?",
                 _short(r.to_id), facts[r.to_id].object if r.to_id in facts else "?",
                 f"{facts[r.from_id].subject} / {facts[r.from_id].predicate}" if r.from_id in facts else ""]
                for r in relations]
        return table(rows, ["KIND", "SEVERITY", "DIFF %", "FROM", "VALUE", "TO", "VALUE", "SUBJECT / PREDICATE"]) + \
            f"\n{len(relations)} open conflict(s)"

    emit(args.json, data, render)
    return 0


def _show(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    (fact_id,) = review.resolve_ids(store, tenant, [args.id])
    fact = store.get_facts(tenant, [fact_id])[0]
    relations = store.list_relations(tenant, fact_ids=[fact_id])
    history = store.audit_log(tenant, fact_id=fact_id)
    data = {**fact.to_dict(), "relations": [r.to_dict() for r in relations],
            "audit": [e.to_dict() for e in history]}

    def render(_: Any) -> str:
        lines = [f"{k}: {v}" for k, v in fact.to_dict().items() if v not in (None, "")]
        lines.append("relations:" if relations else "relations: none")
        lines += [f"  {r.kind} {r.status} {r.severity} {_short(r.from_id)} -> {_short(r.to_id)}"
                  + (f" ({r.resolution})" if r.resolution else "") for r in relations]
        lines.append("audit:")
        lines += [f"  {e.at.isoformat(timespec='seconds')} {e.actor} {e.action} {e.detail}" for e in history]
        return "\n".join(lines)

    emit(args.json, data, render)
    return 0


# -- decisions ------------------------------------------------------------------------------
def _selection(args: SimpleNamespace, store: FactStore, tenant: str, default_status: str) -> list[str]:
    from knowledge_plane.facts import review
    from knowledge_plane.facts.queries import canonical_key

    if args.all == bool(args.ids):
        raise review.ReviewError("give fact ids, or --all with filters (--namespace, --status, --type, --subject)")
    if args.ids:
        return review.resolve_ids(store, tenant, args.ids)
    subject_key = canonical_key(args.subject, "")[0] if args.subject else None
    return [f.id for f in store.list_facts(tenant, namespace=args.namespace, statuses=[args.status or default_status],
                                           fact_type=args.type, subject_key=subject_key)]


def _approve(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    ids = _selection(args, store, tenant, PROPOSED)
    result = review.approve(store, tenant, ids, _actor(args), skip_conflicted=args.all) if ids else \
        {"approved": [], "unchanged": [], "skipped": []}
    emit(args.json, result, lambda r: f"approved {len(r['approved'])}, already approved {len(r['unchanged'])}"
         + (f", skipped {len(r['skipped'])} in an open CONTRADICTS (resolve them first)" if r["skipped"] else ""))
    return 0


def _reject(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    ids = _selection(args, store, tenant, PROPOSED)
    result = review.reject(store, tenant, ids, args.reason, _actor(args)) if ids else {"rejected": [], "unchanged": []}
    emit(args.json, result, lambda r: f"rejected {len(r['rejected'])}, already rejected {len(r['unchanged'])}")
    return 0


def _resolve(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    fact_id, keep_id = review.resolve_ids(store, tenant, [args.id, args.keep])
    result = review.resolve(store, tenant, fact_id, keep_id, _actor(args))
    emit(args.json, result, lambda r: f"kept {r['kept']}; rejected {len(r['rejected'])}, "
         f"closed {len(r['closed'])}, merged {len(r['merged'])}")
    return 0


def _override(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    new_id, old_id = review.resolve_ids(store, tenant, [args.id, args.over])
    result = review.override(store, tenant, new_id, old_id, _actor(args))
    emit(args.json, result, lambda r: f"{r['kept']} holds; {r['closed'] or old_id} valid until {r['valid_until']}")
    return 0


def _merge(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    ids = review.resolve_ids(store, tenant, [args.keep, *args.duplicates])
    result = review.merge(store, tenant, ids[0], ids[1:], _actor(args))
    emit(args.json, result, lambda r: f"merged {len(r['merged'])} duplicate(s) into {r['kept']}")
    return 0


def _edit(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts import review

    (fact_id,) = review.resolve_ids(store, tenant, [args.id])
    result = review.correct(store, tenant, fact_id, args.value, args.reason, _actor(args))
    emit(args.json, result, lambda r: f"{r['new_id']} = {r['object']} ({r['status']}) supersedes {r['corrected']}")
    return 0


# -- time -----------------------------------------------------------------------------------
def _timeline(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts.queries import timeline

    entries = timeline(store, tenant, args.subject, args.predicate, include_rejected=args.all)
    if not entries and not args.json:
        return fail(f"no facts for subject {args.subject!r} and predicate {args.predicate!r}", args.json)

    def render(_: Any) -> str:
        rows = [[e["valid_from"] or "…", e["valid_until"] or "…", e["object"], e["status"], _short(e["id"]),
                 e["source"],
                 ", ".join(f"{r['kind']}({r['status']})" for r in e["relations"])] for e in entries]
        return table(rows, ["FROM", "UNTIL", "VALUE", "STATUS", "ID", "SOURCE", "RELATIONS"])

    emit(args.json, entries, render)
    return 0


def _at(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts.queries import facts_at
    from knowledge_plane.facts.temporal import parse_date

    day = parse_date(args.date, "date")
    found = facts_at(store, tenant, args.subject, args.predicate, day, args.status or ["approved"])
    emit(args.json, {"date": args.date, "facts": [f.to_dict() for f in found]},
         lambda _: _fact_rows(found) if found else f"nothing held on {args.date} "
                                                   f"(statuses: {', '.join(args.status or ['approved'])})")
    return 0


def _gate(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    from knowledge_plane.facts.gate import critical_conflicts

    conflicts = critical_conflicts(store, tenant, args.namespace)
    emit(args.json, {"namespace": args.namespace, "passed": not conflicts, "critical_conflicts": conflicts},
         lambda _: "gate passed: no unresolved critical contradiction" if not conflicts else "\n".join(
             [f"gate FAILED: {len(conflicts)} unresolved critical contradiction(s)"]
             + [" vs ".join(f"{_short(f['id'])} {f['subject']} / {f['predicate']} = {f['object']}" for f in c["facts"])
                for c in conflicts]))
    return 0 if not conflicts else 1


# -- entity types ---------------------------------------------------------------------------
def _types_list(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
    types = store.entity_types(tenant, args.status)
    emit(args.json, [t.to_dict() for t in types], lambda _: table(
        [[t.type_name, t.status, t.decided_by or "-"] for t in types], ["TYPE", "STATUS", "DECIDED BY"]))
    return 0


def _types_decide(approve_it: bool) -> Handler:
    def handler(args: SimpleNamespace, store: FactStore, tenant: str) -> int:
        from knowledge_plane.facts import review

        decided = [review.decide_entity_type(store, tenant, name, approve_it, _actor(args)) for name in args.names]
        emit(args.json, [t.to_dict() for t in decided],
             lambda _: "\n".join(f"{t.type_name}: {t.status}" for t in decided))
        return 0

    return handler


def _json() -> click.Option:
    return json_flag("print JSON")


def _by() -> click.Option:
    return click.Option(["--by"], metavar="NAME",
                        help="reviewer name recorded in the audit log (default: $KNOWLEDGE_REVIEWER or the user)")


def _bulk() -> list[click.Parameter]:
    """Which facts a decision applies to: ids, or --all with filters."""
    return [
        click.Argument(["ids"], nargs=-1, metavar="[ID]...", required=False),
        click.Option(["--all"], is_flag=True, help="every fact matching the filters instead of ids"),
        click.Option(["--namespace"], metavar="NS", help="filter for --all"),
        click.Option(["--status"], type=click.Choice(STATUSES), help="filter for --all (default: proposed)"),
        click.Option(["--type"], help="fact type filter for --all (e.g. SERVICE_LEVEL)"),
        click.Option(["--subject"], help="subject filter for --all"),
    ]


def _command(name: str, handler: Handler, help: str, *params: click.Parameter) -> click.Command:
    return command(name, _run(handler), help, *params)


def register(root: click.Group) -> None:
    root.add_command(group(
        "facts", "review facts, conflicts, timelines and entity types",
        _command("list", _list, "list facts, or open conflicts with --conflicts", _json(),
                 click.Option(["--status"], multiple=True, type=click.Choice(STATUSES), help="repeatable"),
                 click.Option(["--namespace"], metavar="NS"), click.Option(["--subject"]),
                 click.Option(["--predicate"]), click.Option(["--type"], help="fact type, e.g. COST"),
                 click.Option(["--limit"], type=int, metavar="N"),
                 click.Option(["--conflicts"], is_flag=True, help="list open conflict relations instead"),
                 click.Option(["--kind"], multiple=True, type=click.Choice(RELATION_KINDS),
                              help="with --conflicts; repeatable")),
        _command("show", _show, "one fact with its relations and audit trail", _json(), click.Argument(["id"])),
        _command("approve", _approve, "approve facts by id or by filter", _json(), _by(), *_bulk()),
        _command("reject", _reject, "reject facts with a reason", _json(), _by(), *_bulk(),
                 click.Option(["--reason"], required=True)),
        _command("resolve", _resolve, "settle a fact's open conflicts by keeping one fact", _json(), _by(),
                 click.Argument(["id"]),
                 click.Option(["--keep"], metavar="ID", required=True, help="the fact that holds")),
        _command("override", _override, "a newer fact (ID) replaces an older one from its start", _json(), _by(),
                 click.Argument(["id"]),
                 click.Option(["--over"], metavar="ID", required=True, help="the older fact, closed the day before")),
        _command("merge", _merge, "fold duplicates into one fact", _json(), _by(),
                 click.Argument(["keep"]), click.Argument(["duplicates"], nargs=-1, required=True)),
        _command("edit", _edit, "correct a fact's value: a new fact supersedes it", _json(), _by(),
                 click.Argument(["id"]), click.Argument(["value"]),
                 click.Option(["--reason"], required=True, help="what was wrong")),
        _command("timeline", _timeline, "every fact of a subject/predicate in validity order", _json(),
                 click.Argument(["subject"]), click.Argument(["predicate"]),
                 click.Option(["--all"], is_flag=True, help="include rejected facts")),
        _command("at", _at, "what held on a date (approved facts unless --status)", _json(),
                 click.Argument(["subject"]), click.Argument(["predicate"]),
                 click.Argument(["date"], metavar="YYYY-MM-DD"),
                 click.Option(["--status"], multiple=True, type=click.Choice(STATUSES),
                              help="repeatable (default: approved)")),
        _command("gate", _gate, "exit 1 if the namespace has an unresolved critical CONTRADICTS", _json(),
                 click.Argument(["namespace"])),
        group(
            "types", "the entity types registry",
            _command("list", _types_list, "the entity types registered by extraction, with their status", _json(),
                     click.Option(["--status"], type=click.Choice(TYPE_STATUSES))),
            _command("approve", _types_decide(True), "approve pending entity types",
                     _json(), _by(), click.Argument(["names"], nargs=-1, required=True)),
            _command("reject", _types_decide(False), "facts about a rejected type are ignored from then on",
                     _json(), _by(), click.Argument(["names"], nargs=-1, required=True)),
        ),
    ))
