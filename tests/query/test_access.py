"""Actors, grants and API keys (knowledge_plane.serving.access)."""

from __future__ import annotations

import hashlib

import pytest

from knowledge_plane.serving.access import ACTORS, ApiKeyring, resolve_namespaces

AVAILABLE = [
    "internal:code",
    "knowledge:diagnostic",
    "knowledge:faq",
    "knowledge:guides",
    "knowledge:policies",
    "knowledge:runbooks",
    "knowledge:vehicle",
]


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        (
            "chatbot_prod",
            ["knowledge:diagnostic", "knowledge:faq", "knowledge:guides", "knowledge:policies", "knowledge:vehicle"],
        ),
        ("support_prod", [ns for ns in AVAILABLE if ns.startswith("knowledge:")]),
        ("kpi_prod", ["knowledge:runbooks"]),
        ("agents_dev", AVAILABLE),
    ],
)
def test_grants_are_fixed_in_code(actor, expected):
    assert ACTORS[actor].granted(AVAILABLE) == expected


def test_narrowing_keeps_only_granted_namespaces():
    chatbot = ACTORS["chatbot_prod"]
    result = resolve_namespaces(chatbot, ["knowledge:faq", "internal:code", "knowledge:runbooks"], AVAILABLE)
    assert result.namespaces == ["knowledge:faq"]
    assert result.ignored == ["internal:code", "knowledge:runbooks"]


@pytest.mark.parametrize(
    "requested", [["internal:code"], ["knowledge:nope"], ["*"], ["knowledge:*"], ["KNOWLEDGE:FAQ"]]
)
def test_a_request_outside_the_grant_searches_the_grant_as_if_nothing_was_asked(requested):
    chatbot = ACTORS["chatbot_prod"]
    result = resolve_namespaces(chatbot, requested, AVAILABLE)
    assert result.namespaces == chatbot.granted(AVAILABLE)
    assert result.ignored == requested


def test_a_granted_but_unpublished_namespace_narrows_to_nothing():
    result = resolve_namespaces(ACTORS["agents_dev"], ["internal:audits"], AVAILABLE)
    assert result.namespaces == [] and result.ignored == []


def test_keys_plain_and_hashed():
    hashed = hashlib.sha256(b"support-secret-key-123456").hexdigest()
    ring = ApiKeyring.parse(f" chatbot_prod = chatbot-secret-key-1234 , support_prod=sha256:{hashed},")
    assert len(ring) == 2
    assert ring.authenticate("chatbot-secret-key-1234").name == "chatbot_prod"
    assert ring.authenticate("support-secret-key-123456").name == "support_prod"
    assert ring.authenticate("chatbot-secret-key-123") is None
    assert ring.authenticate(hashed) is None  # the hash itself is not a key
    assert ring.authenticate("") is None and ring.authenticate(None) is None


def test_two_keys_for_one_actor():
    ring = ApiKeyring.parse("agents_dev=agents-key-aaaaaaaaaaaa,agents_dev=agents-key-bbbbbbbbbbbb")
    assert ring.authenticate("agents-key-bbbbbbbbbbbb").name == "agents_dev"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("admin=some-long-secret-key-1", "unknown actor 'admin'"),
        ("chatbot_prod", "not 'actor=key'"),
        ("chatbot_prod=", "not 'actor=key'"),
        ("chatbot_prod=short", "at least 16 characters"),
        ("chatbot_prod=sha256:abcd", "64 hex digits"),
    ],
)
def test_bad_key_configuration_fails_at_start_up(value, message):
    with pytest.raises(ValueError, match=message):
        ApiKeyring.parse(value)


def test_keys_are_compared_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr("knowledge_plane.serving.access.hmac.compare_digest",
                        lambda a, b: calls.append(1) or real(a, b))
    ring = ApiKeyring.parse("chatbot_prod=chatbot-secret-key-1234,kpi_prod=kpi-secret-key-123456")
    ring.authenticate("chatbot-secret-key-1234")
    assert len(calls) == 2  # every entry is compared, even after a match
