"""The Weaviate backend: its naming and server-version rules always; the contract when WEAVIATE_URL is set.

No Weaviate server can run on this workplace, so the behaviour tests of test_qdrant.py are
collected again here against the server WEAVIATE_URL names (WEAVIATE_API_KEY if it needs one),
and skipped without one. weaviate-client is a dependency of the project: the module, the client and
the backend's objects are always imported and built, without a server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from knowledge_plane.storage.vector_backends.weaviate import (
    WeaviateBackend,
    WeaviateVersionError,
    _part,
    _properties,
    require_alias_support,
)
from tests.storage.backends.conftest import NAMESPACE, Probe, Target, fresh_tenant, make_version, payload
from tests.storage.backends.test_qdrant import (  # noqa: F401 - the same behaviours, collected again against Weaviate
    test_a_partial_version_is_replaced,
    test_a_version_missing_only_its_record_is_completed_in_place,
    test_bad_input_is_refused,
    test_filters_apply_before_ranking,
    test_hits_carry_their_version_and_unit_vectors,
    test_hybrid_search_ranks_an_exact_keyword_match_first,
    test_keep_three_versions,
    test_publish_is_idempotent_and_point_ids_come_from_chunk_ids,
    test_real_french_passages_are_found,
    test_relevance_vectors_are_stored_beside_the_chunks_and_come_back_with_the_hits,
    test_search_filters_are_checked,
    test_search_goes_through_the_alias_which_switches_and_rolls_back,
    test_switching_to_an_unpublished_version_is_refused,
    test_the_query_service_cannot_write,
    test_the_version_record_carries_model_terms_and_facts,
)

WEAVIATE_NAME = re.compile(r"^[A-Z][_0-9A-Za-z]{0,254}$")


def _weaviate_probe(client: Any) -> Probe:
    def point_ids(collection: str) -> set[str]:
        return {str(o.uuid) for o in client.collections.use(collection).iterator()}

    def delete_points(collection: str, ids: list[str]) -> None:
        handle = client.collections.use(collection)
        for point_id in ids:
            handle.data.delete_by_id(point_id)

    def alias_targets(alias: str) -> list[str]:
        found = client.alias.get(alias_name=alias)
        return [] if found is None else [found.collection]

    return Probe(point_ids, delete_points, alias_targets)


@pytest.fixture
def target() -> Iterator[Target]:
    """Overrides conftest's Qdrant targets for the tests collected in this module."""
    url = os.environ.get("WEAVIATE_URL")
    if not url:
        pytest.skip("WEAVIATE_URL is not set: no Weaviate server to run against")
    tenant = fresh_tenant()
    key = os.environ.get("WEAVIATE_API_KEY") or None
    writer = WeaviateBackend.connect(url=url, api_key=key, tenant_id=tenant, read_only=False)
    reader = WeaviateBackend.connect(url=url, api_key=key, tenant_id=tenant, read_only=True)
    yield Target(writer, reader, _weaviate_probe(writer.client))
    prefix = f"Kp_{_part(tenant)}_"
    for alias in writer.client.alias.list_all():
        if alias.startswith(prefix):
            writer.client.alias.delete(alias_name=alias)
    for name in writer.client.collections.list_all(simple=True):
        if name.startswith(prefix):
            writer.client.collections.delete(name)
    reader.close()
    writer.close()


def test_the_alias_moves_with_one_update(backend, monkeypatch):
    for version in ("v1", "v2"):
        data = make_version(backend.tenant_id, version, n=10)
        backend.publish(NAMESPACE, version, data.vectors, data.payloads)
    backend.switch_alias(NAMESPACE, "v1")
    calls = []
    original = backend.client.alias.update
    monkeypatch.setattr(backend.client.alias, "update", lambda **kw: calls.append(kw) or original(**kw))
    backend.switch_alias(NAMESPACE, "v2")
    assert calls == [{"alias_name": backend.alias_name(NAMESPACE),
                      "new_target_collection": backend.collection_name(NAMESPACE, "v2")}]


def test_collections_are_created_with_their_namespaces_sizing(backend):
    from knowledge_plane.storage.collection_sizing import parse_collection_sizing

    # One node (the test server) holds several shards, but only one replica of each.
    sized = WeaviateBackend(backend.client, backend.tenant_id, read_only=False,
                            collections=parse_collection_sizing("knowledge:*=shards:2,replicas:1,write_consistency:one"))
    data = make_version(backend.tenant_id, "s", n=50)
    name = sized.publish(NAMESPACE, "v1", data.vectors, data.payloads).collection
    assert sized.read_version_info(NAMESPACE, "v1") is not None
    config = backend.client.collections.use(name).config.get()
    assert config.sharding_config.desired_count == 2 and config.replication_config.factor == 1


# -- always: no server needed ------------------------------------------------------------------
def test_weaviate_names():
    backend = WeaviateBackend(None, "acme-corp", read_only=True)
    names = {
        backend.collection_name(ns, v)
        for ns in ("knowledge:faq", "knowledge:faq-x", "knowledge:faq_x", "internal:code")
        for v in ("v1", "v20250101-120000-abc123", "v20250101-120000-abc124")
    }
    aliases = {backend.alias_name(ns) for ns in ("knowledge:faq", "knowledge:faq-x", "knowledge:faq_x")}
    # '-' and '_' both become '_' in a Weaviate name: the hash keeps faq-x and faq_x apart.
    assert len(names) == 12 and len(aliases) == 3
    assert all(WEAVIATE_NAME.match(n) for n in names | aliases)
    assert not names & aliases
    assert backend.collection_name(NAMESPACE, "v1") == WeaviateBackend(None, "acme-corp", True).collection_name(
        NAMESPACE, "v1"
    )
    assert backend.collection_name(NAMESPACE, "v1").startswith(backend.alias_name(NAMESPACE) + "_V_")
    assert WeaviateBackend(None, "acme", True).alias_name(NAMESPACE) != backend.alias_name(NAMESPACE)
    with pytest.raises(ValueError, match="invalid index version"):
        backend.collection_name(NAMESPACE, "v1.2")


@pytest.mark.parametrize("version", ["1.32.0", "1.32.3", "1.33.0-rc.1", "v1.34.2", "2.0.0"])
def test_servers_with_aliases_are_accepted(version):
    require_alias_support(version)


@pytest.mark.parametrize("version", ["1.31.9", "1.25.0", "0.22.1"])
def test_older_servers_are_refused_with_the_version_and_the_minimum(version):
    with pytest.raises(WeaviateVersionError) as error:
        require_alias_support(version)
    assert f"Weaviate server {version} does not support collection aliases" in str(error.value)
    assert "needs Weaviate 1.32.0 or later" in str(error.value)


def test_an_unreadable_server_version_is_refused():
    with pytest.raises(WeaviateVersionError, match="cannot read the Weaviate server version"):
        require_alias_support("")


def test_objects_carry_filter_fields_folded_terms_and_the_payload():
    item = payload("doc-0", "L'embrayage patine à froid", "acme", None, "crm")
    properties = _properties(item)
    assert properties["tenant_id"] == "acme" and properties["source_app"] == "crm"
    assert "pack_id" not in properties  # no pack: no property, so a pack filter never matches it
    assert properties["search_text"] == "embray patin froid"
    assert properties["payload_json"].startswith('{"chunk_id": "doc-0"')


def test_writes_are_refused_read_only_before_reaching_the_server():
    from knowledge_plane.storage.vector_backends import ReadOnlyBackend

    with pytest.raises(ReadOnlyBackend):
        WeaviateBackend(None, "acme", read_only=True).switch_alias(NAMESPACE, "v1")


def test_the_backend_is_built_on_the_installed_client_without_a_server():
    import weaviate
    from weaviate.connect import ConnectionParams

    params = ConnectionParams.from_params(http_host="127.0.0.1", http_port=8080, http_secure=False,
                                          grpc_host="127.0.0.1", grpc_port=50051, grpc_secure=False)
    client = weaviate.WeaviateClient(connection_params=params, skip_init_checks=True)  # never connected
    assert not client.is_connected()
    backend = WeaviateBackend(client, "acme", read_only=False)
    name = backend.collection_name(NAMESPACE, "v20250101-120000-abc123")
    collection = client.collections.use(name)  # a handle: no request until it is used
    assert collection.name == name and WEAVIATE_NAME.match(name)
    assert backend.retry.attempts >= 1


def test_writes_go_at_the_namespaces_consistency_level_without_a_server():
    import weaviate
    from weaviate.classes.config import ConsistencyLevel
    from weaviate.connect import ConnectionParams

    from knowledge_plane.storage.collection_sizing import parse_collection_sizing

    params = ConnectionParams.from_params(http_host="127.0.0.1", http_port=8080, http_secure=False,
                                          grpc_host="127.0.0.1", grpc_port=50051, grpc_secure=False)
    client = weaviate.WeaviateClient(connection_params=params, skip_init_checks=True)  # never connected
    backend = WeaviateBackend(client, "acme", read_only=False,
                              collections=parse_collection_sizing("knowledge:*=replicas:3,write_consistency:quorum"))
    assert backend._writer("Kp_x", NAMESPACE).consistency_level == ConsistencyLevel.QUORUM
    assert backend._writer("Kp_x", "internal:code").consistency_level is None  # no entry: the server's default


def test_weaviate_cloud_without_a_key_is_refused_before_connecting():
    with pytest.raises(ValueError, match="needs an API key"):
        WeaviateBackend.connect(url="https://demo.weaviate.cloud", api_key=None, tenant_id="acme", read_only=True)
