"""Application and pack permissions per actor (closed by default), enforced before ranking, with the
same answer whether a pack or application exists or is only outside the grant; several source_apps
in one query; scope-aware gating answers a one-document pack.

The passages are real embeddings of hand-written notes in ``knowledge:uploads``, so every question
finds its note: an empty answer is never mistaken for isolation (``test_each_note_reaches_its_readers``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from knowledge_plane.serving.access import ACTORS
from knowledge_plane.storage.registry import Registry, query_log_entries
from tests.query.support import KEYS, registry_url_of, state, synthetic_version

NAMESPACE = "knowledge:uploads"
NOTES = [  # (text, payload fields)
    ("Couple de serrage des roues de la Clio 4 : 110 N·m en croix, contrôle après 50 km.",
     {"pack_id": "notes", "source_app": "notes", "workspace": "garage", "doc_id": "note.clio", "lang": "fr"}),
    ("Wheel nut torque for the Peugeot 208: 90 N·m, tightened crosswise, checked after 50 km.",
     {"pack_id": "wiki", "source_app": "wiki", "workspace": "docs", "doc_id": "wiki.208", "lang": "en"}),
    ("Couple de serrage des roues de la Peugeot 208 : 90 N·m, serrage en croix.",
     {"pack_id": "notes", "source_app": "wiki", "doc_id": "wiki.208.fr", "lang": "fr"}),
    ("Procédure interne de serrage des roues à l'atelier : clé dynamométrique étalonnée chaque année.",
     {"pack_id": None, "source_app": "git", "doc_id": "atelier.serrage", "lang": "fr"}),
]
QUESTION = "Quel est le couple de serrage des roues ?"
AURORA_KEYS = {"aurora_nexus_ui": "aurora-ui-test-key-000000005", "aurora_notes": "aurora-notes-test-key-00006"}


def fact(doc_id: str) -> dict:
    """An approved fact each note states, so a leak of facts across packs would show."""
    return {"id": f"fact-{doc_id}", "subject": "roues", "predicate": "couple de serrage", "object": "90 N·m",
            "value": 90.0, "unit": "N·m", "value_type": "number", "fact_type": "SPECIFICATION", "valid_from": None,
            "valid_until": None, "source": f"{doc_id}@upl001", "source_path": f"uploads/{doc_id}.md",
            "source_chunk_id": None, "confidence": 0.9, "approved_by": "account:rita", "approved_at": None,
            "subject_key": "roues", "predicate_key": "couple de serrage"}


def keys() -> str:
    return ",".join(f"{a}={k}" for a, k in {**KEYS, **AURORA_KEYS}.items())


def auth(actor: str) -> dict[str, str]:
    return {"X-API-Key": {**KEYS, **AURORA_KEYS}[actor]}


@pytest.fixture
def uploads(make_client, new_data_dir, build_embedder, tmp_path: Path):
    data = new_data_dir(tmp_path / "uploads")
    registry = Registry(registry_url_of(data), "default")
    texts = [text for text, _ in NOTES]
    synthetic_version(registry, data, NAMESPACE, texts, tag="upl001", vectors=build_embedder.encode(texts),
                      rows=[fields for _, fields in NOTES], facts=[fact(fields["doc_id"]) for _, fields in NOTES])
    return make_client(data, api_keys=keys())


def ask(client, actor: str, **body) -> dict:
    response = client.post("/knowledge/query", json={"question": QUESTION, "top_k": 10, **body}, headers=auth(actor))
    assert response.status_code == 200, response.text
    return response.json()


def allowed(actor: str, passage: dict) -> bool:
    who = ACTORS[actor]
    packs, apps = who.readable_packs(), who.readable_apps()
    return (who.may_read(passage["namespace"])
            and (passage["pack_id"] is None or packs is None or passage["pack_id"] in packs)
            and (apps is None or passage["source_app"] in apps))


PACKS = [None, "notes", "wiki", "*", ["wiki", "nope"], []]
APPS = [None, "notes", "wiki", "*", ["notes", "wiki"], ["git", "wiki", "notes"], []]
WORKSPACES = [None, "garage", "docs"]


def body(pack, app, workspace) -> dict:
    out = {}
    if pack is not None:
        out["pack_ids" if isinstance(pack, list) else "pack_id"] = pack
    if app is not None:
        out["source_apps" if isinstance(app, list) else "source_app"] = app
    if workspace is not None:
        out["workspace"] = workspace
    return out


def test_no_passage_outside_the_grant_for_any_field_combination(uploads):
    leaks, asked = [], 0
    for actor, pack, app, workspace in itertools.product(ACTORS, PACKS, APPS, WORKSPACES):
        if workspace is not None and app is None:
            continue  # 422: a workspace belongs to an application
        asked += 1
        answer = ask(uploads, actor, **body(pack, app, workspace))
        for passage in answer["passages"]:
            if not allowed(actor, passage):
                leaks.append((actor, pack, app, workspace, passage["chunk_id"]))
        readable = {f["doc_id"] for _, f in NOTES if allowed(actor, {"namespace": NAMESPACE, **f})}
        for f in answer["facts"]:  # a fact travels with its document: none from outside the grant either
            if f["source"].partition("@")[0] not in readable:
                leaks.append((actor, pack, app, workspace, f["id"]))
    assert leaks == [] and asked == len(ACTORS) * len(PACKS) * (len(APPS) + 2 * (len(APPS) - 1))


def test_each_note_reaches_its_readers(uploads):
    """The isolation above is meaningful: what an actor may read, it does get."""
    notes_app = ask(uploads, "aurora_notes")
    assert {p["doc_id"] for p in notes_app["passages"]} == {"note.clio"}
    assert [f["id"] for f in notes_app["facts"]] == ["fact-note.clio"]
    everything = ask(uploads, "aurora_nexus_ui")
    assert {p["doc_id"] for p in everything["passages"]} == {"note.clio", "wiki.208.fr", "atelier.serrage"}
    english = ask(uploads, "aurora_nexus_ui", question="couple de serrage roues Peugeot 208", source_app="wiki")
    assert {p["doc_id"] for p in english["passages"]} == {"wiki.208", "wiki.208.fr"}
    # support reads every pack and application of its namespaces; the chatbot no upload at all
    assert {p["doc_id"] for p in ask(uploads, "support_prod")["passages"]} >= {"wiki.208.fr", "atelier.serrage"}
    assert not [p for p in ask(uploads, "chatbot_prod", pack_id="notes")["passages"] if p["namespace"] == NAMESPACE]


def test_several_source_apps_in_one_query(uploads):
    both = ask(uploads, "aurora_nexus_ui", source_apps=["notes", "git"])
    assert {p["source_app"] for p in both["passages"]} == {"notes", "git"}


def test_a_pack_outside_the_grant_answers_as_a_missing_one(uploads):
    def answer(**request) -> dict:
        reply = ask(uploads, "aurora_notes", **request)
        reply.pop("request_id")
        return reply

    assert answer(pack_id="wiki") == answer(pack_id="does-not-exist")
    assert answer(source_app="wiki") == answer(source_app="nobody")
    assert answer(pack_id="wiki")["status"] == "needs_clarification"
    state(uploads).query_log.flush()
    flags = [e["flags"] for e in query_log_entries(state(uploads).registry, 10)]
    assert ["source_app_not_granted"] in flags and ["pack_not_granted"] in flags


def test_a_one_document_pack_answers_a_question_it_matches(uploads):
    # One note in the scope: three passages above the threshold cannot exist there.
    reply = ask(uploads, "aurora_notes", pack_id="notes")
    assert reply["status"] in ("success", "low_confidence")
    assert [p["doc_id"] for p in reply["passages"]] == ["note.clio"]


def test_an_off_topic_question_to_a_one_document_pack_still_needs_clarification(uploads):
    reply = ask(uploads, "aurora_notes", question="Quels sont les horaires d'ouverture du magasin de Lyon ?",
                pack_id="notes")
    assert reply["status"] == "needs_clarification" and reply["passages"] == []
