"""Registry and index store: immutable versions, atomic alias moves, rollback, refusal of failed checks."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_plane.build.checks import run_checks
from knowledge_plane.storage.index_store import read_version, write_version
from knowledge_plane.storage.registry import Registry
from tests.documents import fake_secrets


def _register(registry: Registry, tmp_path, version: str, passed: bool = True) -> None:
    manifest = {"fingerprint": version * 2, "counts": {"chunks": 1, "documents": 1}, "checks_passed": passed}
    registry.add_version("knowledge:faq", version, tmp_path / version, manifest)


@pytest.fixture
def registry(registry_url) -> Registry:
    return Registry(registry_url, "default")


def test_promote_moves_latest_and_keeps_previous_as_rollback(registry, tmp_path):
    for v in ("v1", "v2", "v3"):
        _register(registry, tmp_path, v)
    registry.promote("knowledge:faq", "v1")
    assert registry.aliases()["knowledge:faq"] == {"latest": "v1"}
    registry.promote("knowledge:faq", "v2")
    registry.promote("knowledge:faq", "v3")
    assert registry.aliases()["knowledge:faq"] == {"latest": "v3", "rollback": "v2"}


def test_rollback_walks_back_one_version_at_a_time(registry, tmp_path):
    for v in ("v1", "v2", "v3"):
        _register(registry, tmp_path, v)
        registry.promote("knowledge:faq", v)
    assert registry.rollback("knowledge:faq") == ("v3", "v2")
    assert registry.aliases()["knowledge:faq"] == {"latest": "v2", "rollback": "v1"}
    assert registry.rollback("knowledge:faq") == ("v2", "v1")
    with pytest.raises(LookupError, match="no @rollback"):
        registry.rollback("knowledge:faq")


def test_rollback_goes_back_by_age_when_versions_share_a_second(registry, tmp_path):
    """Ids made in one second sort by their fingerprint, not by age: here the oldest sorts last."""
    ids = ("v20261201-113733-ffffff", "v20261201-113733-888888", "v20261201-113733-111111")  # oldest first
    for v in ids:
        _register(registry, tmp_path, v)
        registry.promote("knowledge:faq", v)
    assert registry.rollback("knowledge:faq") == (ids[2], ids[1])
    assert registry.aliases()["knowledge:faq"] == {"latest": ids[1], "rollback": ids[0]}
    assert registry.rollback("knowledge:faq") == (ids[1], ids[0])


def test_a_version_that_failed_its_checks_can_never_be_promoted(registry, tmp_path):
    _register(registry, tmp_path, "v1")
    registry.promote("knowledge:faq", "v1")
    _register(registry, tmp_path, "v2", passed=False)
    with pytest.raises(PermissionError, match="failed its quality checks"):
        registry.promote("knowledge:faq", "v2")
    assert registry.aliases()["knowledge:faq"] == {"latest": "v1"}


def test_tenants_do_not_see_each_others_aliases(registry, tmp_path):
    _register(registry, tmp_path, "v1")
    registry.promote("knowledge:faq", "v1")
    other = Registry(registry.url, "acme")
    assert other.aliases() == {}
    with pytest.raises(LookupError):
        other.promote("knowledge:faq", "v1")


def test_versions_are_immutable_and_memory_mapped(tmp_path):
    vectors = np.eye(3, 384, dtype=np.float32)
    payloads = [{"chunk_id": str(i), "text": f"t{i}"} for i in range(3)]
    path = write_version(tmp_path / "v1", {"namespace": "knowledge:faq", "version": "v1"}, vectors, payloads)
    loaded = read_version(path)
    assert isinstance(loaded.vectors, np.memmap) and loaded.vectors.shape == (3, 384)
    assert loaded.payloads == payloads
    with pytest.raises(FileExistsError):
        write_version(tmp_path / "v1", {}, vectors, payloads)


def _payload(text: str, i: int = 0) -> dict:
    return {"chunk_id": f"c{i}", "doc_id": f"faq.{i}", "text": text, "source_path": "knowledge/faq/x.json"}


def test_checks_pass_on_a_sound_version_and_name_each_failure():
    good = np.eye(2, 384, dtype=np.float32)
    assert all(c.passed for c in run_checks("knowledge:faq", good, [_payload("a"), _payload("b", 1)], 384))
    bad = good.copy()
    bad[1, 0] = np.nan
    results = {c.name: c for c in run_checks("knowledge:faq", bad, [_payload("a"), _payload(" ", 0)], 384)}
    assert not results["finite_unit_norm"].passed and "1 vectors" in results["finite_unit_norm"].detail
    assert not results["unique_chunk_ids"].passed and not results["no_empty_text"].passed
    wrong_dim = {
        c.name: c.passed for c in run_checks("knowledge:faq", np.eye(1, 768, dtype=np.float32), [_payload("a")], 384)
    }
    assert wrong_dim["dimension"] is False
    assert run_checks("knowledge:faq", np.zeros((0, 384), np.float32), [], 384)[0].passed is False


def test_no_secrets_gate_applies_to_knowledge_namespaces_only():
    leaked = [_payload("clé : " + fake_secrets()["AWS access key id"])]
    vec = np.eye(1, 384, dtype=np.float32)
    assert not {c.name: c.passed for c in run_checks("knowledge:faq", vec, leaked, 384)}["no_secrets"]
    assert {c.name: c.passed for c in run_checks("internal:code", vec, leaked, 384)}["no_secrets"]


def test_a_rebuild_reuses_the_payload_scans_and_still_refuses_the_leak(tmp_path, monkeypatch):
    """The no_secrets check reads remembered scans for payloads it has seen (a no-change rebuild scans
    nothing) and gives the same verdict; a changed payload, or a new scanner, is scanned again."""
    from knowledge_plane.build import checks

    leaked = [_payload("clé : " + fake_secrets()["AWS access key id"]), _payload("rien ici", 1)]
    vec = np.eye(2, 384, dtype=np.float32)
    first = checks.PayloadScanCache(tmp_path / "scans.json")
    verdict = {c.name: c for c in run_checks("knowledge:faq", vec, leaked, 384, scan=first)}["no_secrets"]
    assert not verdict.passed and "text: AWS access key id" in verdict.detail
    first.save()

    scanned = []
    real_scan = checks.payload_secrets
    monkeypatch.setattr(checks, "payload_secrets", lambda p: scanned.append(p["chunk_id"]) or real_scan(p))
    again = checks.PayloadScanCache(tmp_path / "scans.json")
    assert {c.name: c for c in run_checks("knowledge:faq", vec, leaked, 384, scan=again)}["no_secrets"] == verdict
    assert scanned == []
    changed = [leaked[0], _payload("autre texte", 1)]
    run_checks("knowledge:faq", vec, changed, 384, scan=again)
    assert scanned == ["c1"]

    monkeypatch.setattr(checks, "scanner_identity", lambda: "a newer scanner")
    run_checks("knowledge:faq", vec, leaked, 384, scan=checks.PayloadScanCache(tmp_path / "scans.json"))
    assert scanned == ["c1", "c0", "c1"]


def test_the_registry_refuses_a_version_whose_manifest_records_a_failed_check(registry, tmp_path):
    manifest = {
        "fingerprint": "f", "counts": {"chunks": 1, "documents": 1}, "checks_passed": True,
        "checks": [{"name": "no_secrets", "passed": False, "detail": "1 chunk"}],
    }
    registry.add_version("knowledge:faq", "v1", tmp_path / "v1", manifest)
    with pytest.raises(PermissionError, match=r"failed its quality checks \(no_secrets\)"):
        registry.promote("knowledge:faq", "v1")


def test_a_deleted_version_cannot_be_promoted(registry, tmp_path):
    _register(registry, tmp_path, "v1")
    registry.mark_deleted("knowledge:faq", "v1")
    with pytest.raises(LookupError, match="was deleted"):
        registry.promote("knowledge:faq", "v1")


def test_the_registry_knows_who_moved_latest_away_from_a_version(registry, tmp_path):
    from knowledge_plane.storage.registry import OPERATOR_PROMOTE

    for v in ("v1", "v2", "v3"):
        _register(registry, tmp_path, v)
    registry.promote("knowledge:faq", "v1")
    registry.promote("knowledge:faq", "v2")
    assert registry.moved_off_by("knowledge:faq", "v1") == "promote"  # a build replaced it
    assert registry.moved_off_by("knowledge:faq", "v2") is None  # it is @latest
    assert registry.moved_off_by("knowledge:faq", "v3") is None  # never was
    registry.rollback("knowledge:faq")
    assert registry.moved_off_by("knowledge:faq", "v2") == "rollback"
    registry.promote("knowledge:faq", "v3", OPERATOR_PROMOTE)
    assert registry.moved_off_by("knowledge:faq", "v1") == OPERATOR_PROMOTE
    assert registry.aliases()["knowledge:faq"] == {"latest": "v3", "rollback": "v1"}
