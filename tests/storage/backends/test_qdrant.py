"""The Qdrant backend, on qdrant-client's local mode always and on a server when QDRANT_URL is set.

The tests down to "Qdrant only" use the backend contract alone; test_weaviate.py runs them again
against Weaviate.
"""

from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

from knowledge_plane.domain.embedding_model import RELEVANCE_MODEL
from knowledge_plane.domain.lexical import BM25Index, lexical_text
from knowledge_plane.serving.embedding import MODEL_NAME
from knowledge_plane.storage.vector_backends import (
    CHUNK_NAMESPACE,
    VERSION_INFO_ID,
    ReadOnlyBackend,
    VectorSettings,
    VersionInUse,
    open_vector_backend,
    point_uuid,
)
from tests.storage.backends.conftest import (
    NAMESPACE,
    OTHER_TENANT,
    Version,
    make_version,
    payload,
    random_unit,
    unit,
)

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant")


def chunk_ids(hits) -> list[str]:
    return [h.chunk_id for h in hits]


def chunk_points(version: Version) -> set[str]:
    """The point ids a complete version holds: one per chunk, and its version record."""
    return {str(uuid.uuid5(CHUNK_NAMESPACE, c)) for c in version.chunk_ids} | {VERSION_INFO_ID}


def best(version: Version, query: np.ndarray, keep) -> str:
    """The chunk a filtered dense search must return first: the best cosine among the allowed ones."""
    allowed = [i for i, p in enumerate(version.payloads) if keep(p)]
    scores = version.vectors[allowed] @ query
    return version.payloads[allowed[int(np.argmax(scores))]]["chunk_id"]


# -- the contract ------------------------------------------------------------------------------
def test_publish_is_idempotent_and_point_ids_come_from_chunk_ids(backend, probe):
    v1 = make_version(backend.tenant_id, "v1")
    first = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads)
    assert (first.points, first.reused) == (200, False)
    assert first.collection == backend.collection_name(NAMESPACE, "v1")
    assert probe.point_ids(first.collection) == chunk_points(v1)

    again = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads)
    assert (again.points, again.reused) == (200, True)
    assert backend.list_versions(NAMESPACE) == ["v1"]


def test_a_partial_version_is_replaced(backend, probe):
    v1 = make_version(backend.tenant_id, "v1")
    collection = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads).collection
    lost = sorted(probe.point_ids(collection) - {VERSION_INFO_ID})[:50]
    probe.delete_points(collection, [*lost, VERSION_INFO_ID])  # as if the upload had stopped half-way
    assert len(probe.point_ids(collection)) == 150
    assert backend.read_version_info(NAMESPACE, "v1") is None  # incomplete: no record

    result = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads)
    assert not result.reused
    assert probe.point_ids(collection) == chunk_points(v1)


def test_a_version_missing_only_its_record_is_completed_in_place(backend, reader, probe):
    v1 = make_version(backend.tenant_id, "v1", n=20)
    collection = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads).collection
    backend.switch_alias(NAMESPACE, "v1")
    probe.delete_points(collection, [VERSION_INFO_ID])  # published before records existed, or stopped there

    result = backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads, facts=[{"id": "f1"}])
    assert result.reused  # served, so it must not be rebuilt; the record is simply added
    assert probe.point_ids(collection) == chunk_points(v1)
    assert reader.read_version_info(NAMESPACE, "v1").facts == [{"id": "f1"}]


def test_the_version_record_carries_model_terms_and_facts(backend, reader):
    v1 = make_version(backend.tenant_id, "v1", n=30)
    facts = [{"id": "f1", "subject": "retour", "predicate": "délai", "value": "30 jours"}]
    backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads, facts=facts)
    info = reader.read_version_info(NAMESPACE, "v1")
    assert (info.namespace, info.version, info.model, info.dimension, info.chunks) == (
        NAMESPACE, "v1", MODEL_NAME, 384, 30)
    assert info.facts == facts
    # The record's IDF gives the same coverage as the local BM25 index over the same chunks.
    texts = [lexical_text(p) for p in v1.payloads]
    local = BM25Index(texts).score("entretien du véhicule, passage 7").coverage
    remote = [info.terms.coverage("entretien du véhicule, passage 7", t) for t in texts]
    assert np.allclose(local, remote, atol=1e-5) and max(remote) == 1.0
    assert reader.read_version_info(NAMESPACE, "v9") is None


def test_hits_carry_their_version_and_unit_vectors(backend, reader):
    v1 = make_version(backend.tenant_id, "v1", n=20)
    backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads)
    backend.switch_alias(NAMESPACE, "v1")
    query = v1.vectors[3]
    hits = reader.search(NAMESPACE, query, "entretien", 5, {"tenant_id": backend.tenant_id})
    assert hits[0].chunk_id == v1.payloads[3]["chunk_id"]
    assert all(h.payload["index_version"] == "v1" for h in hits)
    assert float(hits[0].vector @ query) == pytest.approx(1.0, abs=1e-5)  # the stored vector: cosine by dot
    assert VERSION_INFO_ID not in {point_uuid(h.chunk_id) for h in hits}


def test_search_goes_through_the_alias_which_switches_and_rolls_back(backend, reader, probe):
    v1, v2 = make_version(backend.tenant_id, "v1", seed=1), make_version(backend.tenant_id, "v2", seed=2)
    backend.publish(NAMESPACE, "v1", v1.vectors, v1.payloads)
    backend.publish(NAMESPACE, "v2", v2.vectors, v2.payloads)
    assert backend.current_alias_target(NAMESPACE) is None
    with pytest.raises(LookupError, match="no published version"):
        reader.search(NAMESPACE, v1.vectors[0], "", 5, {"tenant_id": backend.tenant_id})

    alias = backend.alias_name(NAMESPACE)

    def serves(version: str, data: Version) -> None:
        assert reader.current_alias_target(NAMESPACE) == version
        assert probe.alias_targets(alias) == [backend.collection_name(NAMESPACE, version)]  # exactly one
        hits = reader.search(NAMESPACE, v2.vectors[0], "", 10, {"tenant_id": backend.tenant_id})
        assert len(hits) == 10 and set(chunk_ids(hits)) <= data.chunk_ids

    backend.switch_alias(NAMESPACE, "v1")
    serves("v1", v1)
    backend.switch_alias(NAMESPACE, "v2")
    serves("v2", v2)
    backend.rollback(NAMESPACE, "v1")
    serves("v1", v1)
    assert sorted(backend.list_versions(NAMESPACE)) == ["v1", "v2"]


def test_switching_to_an_unpublished_version_is_refused(backend):
    with pytest.raises(LookupError, match="not published"):
        backend.switch_alias(NAMESPACE, "v9")


def test_keep_three_versions(backend, reader):
    versions = [f"v2025010{i}-120000-abc12{i}" for i in range(1, 5)]
    for i, version in enumerate(versions):
        data = make_version(backend.tenant_id, f"r{i}", n=30, seed=i)
        backend.publish(NAMESPACE, version, data.vectors, data.payloads)
        backend.switch_alias(NAMESPACE, version)
    assert backend.list_versions(NAMESPACE) == versions

    for version in backend.list_versions(NAMESPACE)[:-3]:  # what knowledge_plane.build.stages's prune_versions will do
        backend.delete_version(NAMESPACE, version)
    assert backend.list_versions(NAMESPACE) == versions[1:]
    with pytest.raises(VersionInUse):
        backend.delete_version(NAMESPACE, versions[-1])
    query = random_unit(np.random.default_rng(9), 1)[0]
    assert reader.search(NAMESPACE, query, "", 3, {"tenant_id": backend.tenant_id})


def test_filters_apply_before_ranking(backend, reader):
    tenant = backend.tenant_id
    data = make_version(tenant, "v1")
    backend.publish(NAMESPACE, "v1", data.vectors, data.payloads)
    backend.switch_alias(NAMESPACE, "v1")
    pack_a = next(i for i, p in enumerate(data.payloads) if p["pack_id"] == "pack-a" and p["tenant_id"] == tenant)
    query = data.vectors[pack_a]

    def search(top_k: int, **filters):
        return reader.search(NAMESPACE, query, "", top_k, {"tenant_id": tenant, **filters})

    assert chunk_ids(search(1)) == [data.payloads[pack_a]["chunk_id"]]
    # The pack's own best, although 150 better-scoring chunks of other packs come before it.
    only_b = search(1, pack_ids=["pack-b"])
    assert chunk_ids(only_b) == [best(data, query, lambda p: p["tenant_id"] == tenant and p["pack_id"] == "pack-b")]
    b_or_c = search(8, pack_ids=["pack-b", "pack-c"])
    assert len(b_or_c) == 8 and {h.payload["pack_id"] for h in b_or_c} <= {"pack-b", "pack-c"}
    assert chunk_ids(b_or_c)[0] == best(
        data, query, lambda p: p["tenant_id"] == tenant and p["pack_id"] in ("pack-b", "pack-c")
    )
    crm = search(20, source_app="crm")
    assert len(crm) == 20 and {h.payload["source_app"] for h in crm} == {"crm"}
    assert search(5, pack_ids=[]) == []

    other = next(i for i, p in enumerate(data.payloads) if p["tenant_id"] == OTHER_TENANT)
    mine = reader.search(NAMESPACE, data.vectors[other], "", 1, {"tenant_id": tenant})
    assert chunk_ids(mine) == [best(data, data.vectors[other], lambda p: p["tenant_id"] == tenant)]
    theirs = reader.search(NAMESPACE, query, "", 50, {"tenant_id": OTHER_TENANT})
    assert len(theirs) == 20 and {h.payload["tenant_id"] for h in theirs} == {OTHER_TENANT}


def test_grant_filters_keep_unpacked_passages_beside_the_granted_packs(backend, reader):
    tenant = backend.tenant_id
    data = make_version(tenant, "v1")
    for i, p in enumerate(data.payloads):
        if i % 7 == 0:
            p["pack_id"] = None  # outside every pack, like the Git corpus
        if i % 5 == 0:
            p["workspace"] = "garage"
    backend.publish(NAMESPACE, "v1", data.vectors, data.payloads)
    backend.switch_alias(NAMESPACE, "v1")
    query = data.vectors[0]

    def packs(**filters) -> set:
        hits = reader.search(NAMESPACE, query, "", 200, {"tenant_id": tenant, **filters})
        return {h.payload["pack_id"] for h in hits}

    assert packs(pack_ids=["pack-a"], unpacked=True) == {None, "pack-a"}
    assert packs(pack_ids=[], unpacked=True) == {None}
    assert packs(pack_ids=["pack-a"]) == {"pack-a"}
    apps = reader.search(NAMESPACE, query, "", 200, {"tenant_id": tenant, "source_apps": ["crm", "nobody"]})
    assert apps and {h.payload["source_app"] for h in apps} == {"crm"}
    assert reader.search(NAMESPACE, query, "", 5, {"tenant_id": tenant, "source_apps": []}) == []
    garage = reader.search(NAMESPACE, query, "", 200, {"tenant_id": tenant, "workspace": "garage"})
    assert garage and {h.payload.get("workspace") for h in garage} == {"garage"}


def test_search_filters_are_checked(reader):
    with pytest.raises(ValueError, match="tenant_id"):
        reader.search(NAMESPACE, np.ones(384, dtype=np.float32), "", 3, {"pack_ids": ["pack-a"]})
    with pytest.raises(ValueError, match="unknown search filter"):
        reader.search(NAMESPACE, np.ones(384, dtype=np.float32), "", 3, {"tenant_id": "x", "pack": "pack-a"})


def test_hybrid_search_ranks_an_exact_keyword_match_first(backend, reader):
    """Dense alone puts a vidange passage first; the rare code P0420 lifts its own passage above it."""
    tenant = backend.tenant_id
    rng = np.random.default_rng(7)
    query = random_unit(rng, 1)[0]
    near, keyword, *others = random_unit(rng, 40)
    vectors = [unit(0.9 * query + np.sqrt(1 - 0.81) * near), unit(0.5 * query + np.sqrt(1 - 0.25) * keyword)]
    texts = ["Entretien du véhicule : vidange et filtres.", "Code défaut P0420 : rendement du catalyseur insuffisant."]
    for i, other in enumerate(others):
        vectors.append(other)
        texts.append(f"Code défaut P0{300 + i} : code code ratés d'allumage du cylindre {i}.")
    payloads = [payload(f"doc{i}-0", text, tenant) for i, text in enumerate(texts)]
    backend.publish(NAMESPACE, "v1", np.stack(vectors), payloads)
    backend.switch_alias(NAMESPACE, "v1")

    assert int(np.argmax(np.stack(vectors) @ query)) == 0  # the dense ranking alone
    hits = reader.search(NAMESPACE, query, "Que signifie le code P0420 ?", 5, {"tenant_id": tenant})
    assert chunk_ids(hits)[0] == "doc1-0"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    folded = reader.search(NAMESPACE, query, "CODE p0420", 1, {"tenant_id": tenant})
    assert chunk_ids(folded) == ["doc1-0"]


def test_real_french_passages_are_found(backend, reader):
    from knowledge_plane.serving.embedding import Embedder

    texts = {
        "freins": "Des freins qui grincent signalent souvent des plaquettes usées : faites-les contrôler.",
        "batterie": "Une batterie faible rend le démarrage difficile par temps froid.",
        "pneus": "Vérifiez la pression des pneumatiques une fois par mois, à froid.",
        "clim": "La climatisation doit être rechargée en gaz tous les deux ou trois ans.",
        "vidange": "La vidange du moteur se fait tous les 15 000 km selon le carnet d'entretien.",
    }
    embedder = Embedder()
    payloads = [payload(f"{name}-0", text, backend.tenant_id) for name, text in texts.items()]
    backend.publish(NAMESPACE, "v1", embedder.encode(list(texts.values())), payloads)
    backend.switch_alias(NAMESPACE, "v1")
    questions = {
        "La voiture ne démarre pas le matin quand il gèle": "batterie-0",  # no word in common
        "plaquettes de frein usées": "freins-0",
        "Quand changer l'huile moteur ?": "vidange-0",
    }
    vectors = embedder.encode(list(questions))
    for (question, expected), vector in zip(questions.items(), vectors, strict=True):
        hits = reader.search(NAMESPACE, vector, question, 1, {"tenant_id": backend.tenant_id})
        assert chunk_ids(hits) == [expected], question


def test_the_query_service_cannot_write(backend, reader):
    data = make_version(backend.tenant_id, "v1", n=10)
    backend.publish(NAMESPACE, "v1", data.vectors, data.payloads)
    for attempt in (
        lambda: reader.publish(NAMESPACE, "v2", data.vectors, data.payloads),
        lambda: reader.switch_alias(NAMESPACE, "v1"),
        lambda: reader.rollback(NAMESPACE, "v1"),
        lambda: reader.delete_version(NAMESPACE, "v1"),
    ):
        with pytest.raises(ReadOnlyBackend, match="read-only"):
            attempt()
    assert reader.list_versions(NAMESPACE) == ["v1"] and reader.current_alias_target(NAMESPACE) is None


def test_bad_input_is_refused(backend):
    data = make_version(backend.tenant_id, "v1", n=10)
    with pytest.raises(ValueError, match="one vector per payload"):
        backend.publish(NAMESPACE, "v1", data.vectors[:5], data.payloads)
    with pytest.raises(ValueError, match="unique"):
        backend.publish(NAMESPACE, "v1", data.vectors[:2], [data.payloads[0], data.payloads[0]])
    with pytest.raises(ValueError, match="invalid index version"):
        backend.publish(NAMESPACE, "V1_final", data.vectors, data.payloads)
    assert backend.list_versions(NAMESPACE) == []


def test_relevance_vectors_are_stored_beside_the_chunks_and_come_back_with_the_hits(backend, reader):
    """The gate's relevance vectors: a second named vector, returned only when asked for; the version
    record says the version has them; a version published without them returns none."""
    rng = np.random.default_rng(11)
    texts = ["Code défaut P0420 : catalyseur.", "Vidange et filtres.", "Pression des pneus."]
    vectors, relevance = random_unit(rng, 3), random_unit(rng, 3)
    payloads = [payload(f"d{i}-0", t, backend.tenant_id) for i, t in enumerate(texts)]
    backend.publish(NAMESPACE, "v1", vectors, payloads, relevance=relevance)
    backend.switch_alias(NAMESPACE, "v1")
    assert backend.read_version_info(NAMESPACE, "v1").relevance_model == RELEVANCE_MODEL
    allowed = {"tenant_id": backend.tenant_id}
    hits = reader.search(NAMESPACE, vectors[0], "code P0420", 3, allowed, with_relevance=True)
    by_chunk = {p["chunk_id"]: row for row, p in enumerate(payloads)}
    for hit in hits:
        assert np.allclose(hit.relevance, relevance[by_chunk[hit.chunk_id]], atol=1e-6)
        assert np.allclose(hit.vector, vectors[by_chunk[hit.chunk_id]], atol=1e-6)
    assert all(hit.relevance is None for hit in reader.search(NAMESPACE, vectors[0], "code P0420", 3, allowed))

    backend.publish(NAMESPACE, "v2", vectors, payloads)  # without: the alias may point at such a version
    backend.switch_alias(NAMESPACE, "v2")
    assert backend.read_version_info(NAMESPACE, "v2").relevance_model is None
    assert all(hit.relevance is None for hit in reader.search(NAMESPACE, vectors[0], "code", 3, allowed, True))


# -- Qdrant only -------------------------------------------------------------------------------
QDRANT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_qdrant_names(backend):
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    names = {
        backend.collection_name(ns, v)
        for ns in ("knowledge:faq", "knowledge:faq-v", "internal:code")
        for v in ("v1", "v20250101-120000-abc123")
    }
    assert len(names) == 6 and all(QDRANT_NAME.match(n) for n in names)
    assert backend.collection_name(NAMESPACE, "v1") == backend.collection_name(NAMESPACE, "v1")
    assert backend.alias_name(NAMESPACE) not in names
    other = QdrantBackend(backend.client, "another", read_only=True)
    assert other.collection_name(NAMESPACE, "v1") != backend.collection_name(NAMESPACE, "v1")
    with pytest.raises(ValueError):
        backend.collection_name("faq", "v1")


def test_the_alias_moves_in_one_atomic_request(backend, monkeypatch):
    from qdrant_client import models

    for version in ("v1", "v2"):
        data = make_version(backend.tenant_id, version, n=10)
        backend.publish(NAMESPACE, version, data.vectors, data.payloads)
    backend.switch_alias(NAMESPACE, "v1")
    calls = []
    original = backend.client.update_collection_aliases
    monkeypatch.setattr(
        backend.client, "update_collection_aliases", lambda **kw: calls.append(kw) or original(**kw)
    )
    backend.switch_alias(NAMESPACE, "v2")
    assert len(calls) == 1
    delete, create = calls[0]["change_aliases_operations"]
    assert isinstance(delete, models.DeleteAliasOperation) and isinstance(create, models.CreateAliasOperation)
    assert delete.delete_alias.alias_name == create.create_alias.alias_name == backend.alias_name(NAMESPACE)
    assert create.create_alias.collection_name == backend.collection_name(NAMESPACE, "v2")


def test_collections_hold_dense_and_idf_weighted_bm25_vectors(backend, monkeypatch):
    from qdrant_client import models

    from knowledge_plane.storage.vector_backends.qdrant import INDEXED_FIELDS

    indexed = []
    original = backend.client.create_payload_index

    def spy(name, field_name, *args, **kwargs):
        indexed.append(field_name)
        return original(name, field_name, *args, **kwargs)

    monkeypatch.setattr(backend.client, "create_payload_index", spy)
    data = make_version(backend.tenant_id, "v1", n=10)
    name = backend.publish(NAMESPACE, "v1", data.vectors, data.payloads).collection
    params = backend.client.get_collection(name).config.params
    assert params.vectors["dense"].size == 384 and params.vectors["dense"].distance == models.Distance.COSINE
    assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert {"tenant_id", "pack_id", "source_app", "namespace"} <= set(indexed) == set(INDEXED_FIELDS)
    point = backend.client.retrieve(name, [point_uuid(data.payloads[0]["chunk_id"])], with_vectors=True)[0]
    assert set(point.vector) == {"dense", "bm25"} and point.payload == {**data.payloads[0], "index_version": "v1"}


def test_bm25_terms_fold_accents_and_case():
    from knowledge_plane.storage.vector_backends.qdrant import bm25_vectors, query_sparse_vector, token_id

    indexed = bm25_vectors(["Référence de l'embrayage", "REFERENCE embrayage", "le la les"])
    assert indexed[0].indices == indexed[1].indices
    assert indexed[2] is None  # stop words only: no sparse vector
    assert query_sparse_vector("Référence ?").indices == [token_id("referen")]
    assert query_sparse_vector("le, la ?") is None


def test_open_vector_backend_reads_the_environment(tmp_path, monkeypatch):
    from knowledge_plane.settings import Settings
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    for name in ("KNOWLEDGE_VECTOR_BACKEND", "QDRANT_URL", "QDRANT_PATH", "QDRANT_API_KEY", "WEAVIATE_URL"):
        monkeypatch.delenv(name, raising=False)
    def settings():  # the process's settings, as a process would build them at start-up
        return Settings(paths={"data_dir": tmp_path}, tenant_id="acme")

    assert open_vector_backend(settings(), read_only=True) is None

    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
    with pytest.raises(ValueError, match="QDRANT_URL"):
        open_vector_backend(settings(), read_only=True)
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    with open_vector_backend(settings(), read_only=True) as opened:
        assert isinstance(opened, QdrantBackend) and opened.read_only and opened.tenant_id == "acme"
    monkeypatch.setenv("QDRANT_API_KEY", "secret-key")
    assert "secret-key" not in repr(VectorSettings.of(settings())) + repr(settings())

    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "weaviate")
    with pytest.raises(ValueError, match="WEAVIATE_URL"):
        open_vector_backend(settings(), read_only=True)
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "pinecone")
    with pytest.raises(ValueError, match="local, qdrant, weaviate"):
        open_vector_backend(settings(), read_only=False)


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_qdrant_fuses_with_the_rank_constant(backend, reader):
    """First in both rankings scores 2 / (60 + 1): Qdrant's reciprocal-rank fusion with k = RRF_K."""
    texts = ["Code défaut P0420 : catalyseur.", "Vidange et filtres.", "Pression des pneus."]
    vectors = random_unit(np.random.default_rng(3), 3)
    backend.publish(NAMESPACE, "v1", vectors, [payload(f"d{i}-0", t, backend.tenant_id) for i, t in enumerate(texts)])
    backend.switch_alias(NAMESPACE, "v1")
    hits = reader.search(NAMESPACE, vectors[0], "code P0420", 3, {"tenant_id": backend.tenant_id})
    assert hits[0].chunk_id == "d0-0" and hits[0].score == pytest.approx(2 / 61)
    assert hits[1].score == pytest.approx(1 / 62)  # second in the dense ranking, absent from BM25's


# -- collection sizing and parallel uploads ----------------------------------------------------
def _sized(backend, **kwargs):
    """A second build-plane backend on the fixture's client (not closed here: the fixture closes the client)."""
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    return QdrantBackend(backend.client, backend.tenant_id, read_only=False, **kwargs)


def test_parallel_uploads_write_the_same_points_as_serial(backend, probe):
    from knowledge_plane.storage.vector_backends.qdrant import UPLOAD_BATCH

    data = make_version(backend.tenant_id, "p", n=3 * UPLOAD_BATCH + 17)  # 4 batches, the last one short
    serial = backend.publish(NAMESPACE, "v1", data.vectors, data.payloads).collection
    parallel = _sized(backend, upload_workers=3).publish(NAMESPACE, "v2", data.vectors, data.payloads)
    assert not parallel.reused and parallel.points == len(data.payloads)
    assert probe.point_ids(parallel.collection) == probe.point_ids(serial) == chunk_points(data)
    assert backend.read_version_info(NAMESPACE, "v2") is not None  # complete: the record came after every batch
    sample = [point_uuid(data.payloads[i]["chunk_id"]) for i in (0, UPLOAD_BATCH, 3 * UPLOAD_BATCH + 16)]
    for one, other in zip(backend.client.retrieve(serial, sample, with_vectors=True),
                          backend.client.retrieve(parallel.collection, sample, with_vectors=True), strict=True):
        assert one.id == other.id and one.vector == other.vector
        assert {**one.payload, "index_version": "v2"} == other.payload


def test_a_batch_that_fails_fails_the_publish_and_the_next_publish_completes(backend, monkeypatch):
    from knowledge_plane.storage.vector_backends.qdrant import UPLOAD_BATCH

    data = make_version(backend.tenant_id, "f", n=4 * UPLOAD_BATCH)
    original, sent = backend.client.upsert, []

    def second_batch_refused(name, points, **kwargs):
        sent.append(len(points))
        if len(sent) == 2:  # not a transient failure: no retry
            raise ValueError("refused by the store")
        return original(name, points=points, **kwargs)

    monkeypatch.setattr(backend.client, "upsert", second_batch_refused)
    with pytest.raises(ValueError, match="refused by the store"):
        _sized(backend, upload_workers=2).publish(NAMESPACE, "v1", data.vectors, data.payloads)
    assert backend.read_version_info(NAMESPACE, "v1") is None  # no record: the version is incomplete
    monkeypatch.setattr(backend.client, "upsert", original)
    result = _sized(backend, upload_workers=2).publish(NAMESPACE, "v1", data.vectors, data.payloads)
    assert not result.reused and backend.read_version_info(NAMESPACE, "v1") is not None


def test_collections_are_created_with_their_namespaces_sizing(backend):
    """On a server the collection's config shows the sizing; local mode accepts and ignores it."""
    from knowledge_plane.storage.collection_sizing import parse_collection_sizing

    # One node (the test server) holds any number of shards, but only one replica of each.
    sized = _sized(backend, upload_workers=2,
                   collections=parse_collection_sizing("knowledge:*=shards:3,replicas:1,write_consistency:1"))
    data = make_version(backend.tenant_id, "s", n=300)
    name = sized.publish(NAMESPACE, "v1", data.vectors, data.payloads).collection
    other = sized.publish("internal:code", "v1", data.vectors, data.payloads).collection  # no entry: defaults
    assert backend.read_version_info(NAMESPACE, "v1") is not None
    assert backend.client.count(name, exact=True).count == len(data.payloads) + 1
    if backend._local:
        return
    params = backend.client.get_collection(name).config.params
    assert (params.shard_number, params.replication_factor, params.write_consistency_factor) == (3, 1, 1)
    assert backend.client.get_collection(other).config.params.shard_number == 1


def test_open_vector_backend_passes_the_sizing_and_upload_workers(tmp_path, monkeypatch):
    from knowledge_plane.settings import Settings
    from knowledge_plane.storage.collection_sizing import CollectionSizing
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    environ = {"KNOWLEDGE_DATA_DIR": str(tmp_path), "KNOWLEDGE_VECTOR_BACKEND": "qdrant",
               "QDRANT_PATH": str(tmp_path / "qdrant"), "KNOWLEDGE_VECTOR_UPLOAD_WORKERS": "4",
               "KNOWLEDGE_VECTOR_COLLECTIONS": "knowledge:*=shards:2,replicas:2,write_consistency:all"}
    with open_vector_backend(Settings.from_environ(environ), read_only=False) as opened:
        assert isinstance(opened, QdrantBackend) and opened.upload_workers == 4
        assert opened.collections == {"knowledge:*": CollectionSizing(2, 2, "all")}
    with open_vector_backend(Settings.from_environ({**environ, "KNOWLEDGE_VECTOR_COLLECTIONS": "",
                                                    "KNOWLEDGE_VECTOR_UPLOAD_WORKERS": ""}), False) as opened:
        assert opened.upload_workers == 1 and opened.collections == {}  # today's behaviour
