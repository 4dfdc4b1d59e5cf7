"""The LLM extractor: configuration, schema, budget, parsing — and the real ``openai`` client
against a small OpenAI-compatible server the tests start on loopback, answering with a recorded
structured output (no external endpoint is ever called).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi import Request  # at module level: the endpoint's annotation is resolved from here

from knowledge_plane.facts.extract import DocumentContext, Extraction
from knowledge_plane.facts.llm import (
    FACT_SCHEMA,
    PROMPT_ID,
    LLMConfig,
    LLMExtractor,
    LLMOutputError,
    TokenBudget,
    build_messages,
    document_text,
    estimate_tokens,
    parse_output,
    response_format,
    to_facts,
)
from knowledge_plane.settings import Settings
from tests.facts.support import document


def _strict_objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _strict_objects(value)


def test_schema_follows_strict_structured_output_rules():
    objects = list(_strict_objects(FACT_SCHEMA))
    assert len(objects) == 2
    for obj in objects:  # strict mode: every property required, nothing else allowed
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    fmt = response_format()
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "extracted_facts" and fmt["json_schema"]["schema"] is FACT_SCHEMA


@pytest.mark.parametrize(("env", "enabled"), [
    ({}, False), ({"OPENAI_API_KEY": "sk-test"}, True), ({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}, True),
    ({"OPENAI_API_KEY": "  "}, False),
])
def test_enabled_only_when_an_endpoint_is_configured(monkeypatch, env, enabled):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KNOWLEDGE_LLM_MODEL", "KNOWLEDGE_LLM_TOKEN_BUDGET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert LLMConfig.of(Settings().llm).enabled is enabled


def test_config_reads_model_budget_and_prices(monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_LLM_MODEL", "qwen2.5-7b")
    monkeypatch.setenv("KNOWLEDGE_LLM_TOKEN_BUDGET", "5000")
    monkeypatch.setenv("KNOWLEDGE_LLM_PRICE_INPUT", "1.5")
    config = LLMConfig.of(Settings().llm)
    assert (config.model, config.token_budget, config.price_input_per_mtok) == ("qwen2.5-7b", 5000, 1.5)
    monkeypatch.setenv("KNOWLEDGE_LLM_TOKEN_BUDGET", "lots")
    with pytest.raises(ValueError, match="KNOWLEDGE_LLM_TOKEN_BUDGET: Input should be a valid integer"):
        Settings()


def test_budget_counts_tokens_and_cost_and_refuses_overruns():
    budget = TokenBudget(10_000, price_input_per_mtok=0.15, price_output_per_mtok=0.60)
    assert budget.allows(7_000, 2_000) and not budget.allows(8_001, 2_000)
    budget.record(6_000, 1_500)
    assert (budget.used, budget.remaining, budget.calls) == (7_500, 2_500, 1)
    assert budget.cost == pytest.approx(6_000 * 0.15e-6 + 1_500 * 0.60e-6)
    assert not budget.allows(600, 2_000) and budget.allows(500, 2_000)
    summary = budget.summary()
    assert summary["tokens"] == 7_500 and summary["estimated_cost_usd"] == pytest.approx(0.0018)


def test_a_document_over_budget_is_skipped_without_a_call():
    class NoCall:
        def __getattr__(self, name):
            raise AssertionError("the budget must stop the call before the client is used")

    extractor = LLMExtractor(LLMConfig(api_key="sk-test", token_budget=1_000, max_output_tokens=900), client=NoCall())
    budget = extractor.new_budget()
    doc = document("long", ["Le délai de retour est de 30 jours. " * 40])
    result = extractor.extract(DocumentContext("t", doc), budget)
    assert result.facts == [] and budget.skipped == ["long"] and budget.calls == 0
    assert "exceed" in result.problems[0]


def test_prompt_text_is_cut_at_a_section_edge():
    doc = document("d", ["A" * 100, "B" * 100, "C" * 100], title="T")
    text = document_text(doc, max_chars=230)
    assert "A" * 100 in text and "B" * 100 in text and "C" not in text
    messages = build_messages(doc, 10_000)
    assert [m["role"] for m in messages] == ["system", "user"] and "Valid from: not stated" in messages[1]["content"]
    assert estimate_tokens("x" * 35) == 10


def _item(**overrides):
    item = {"subject": "plateforme", "subject_type": "Service", "predicate": "disponibilité", "value": "99,7",
            "unit": "%", "fact_type": "SERVICE_LEVEL", "valid_from": "2024-06-01", "valid_until": None,
            "evidence": "un SLA de 99,7 %", "confidence": 0.99}
    item.update(overrides)
    return item


def test_answers_are_parsed_and_normalised_like_rule_facts():
    doc = document("contrat", "Depuis juin, un SLA de 99,7 % s'applique.", truth_level="L2")
    items = parse_output(json.dumps({"facts": [_item(), _item(valid_from="juin 2024"), _item(value=" ")]}))
    out = Extraction()
    facts = to_facts(DocumentContext("t", doc), items, "gpt-test", out)
    (fact,) = facts
    assert (fact.subject, fact.predicate, fact.value, fact.unit) == ("service", "SLA", 0.997, "ratio")
    assert (fact.extraction_method, fact.extraction_model, fact.prompt_id) == ("llm", "gpt-test", PROMPT_ID)
    assert fact.valid_from == dt.date(2024, 6, 1) and fact.entity_type == "Service"
    assert fact.confidence == pytest.approx(0.6 * 0.95)  # capped by the method, not the model's own claim
    assert len(out.problems) == 2 and "expected YYYY-MM-DD" in out.problems[0]


@pytest.mark.parametrize(("content", "message"), [
    (None, "empty answer"), ("not json", "not JSON"), ('{"items": []}', "no 'facts' list"),
    ('{"facts": [{"subject": "s"}]}', "facts\\[0\\] lacks"),
])
def test_malformed_answers_are_named(content, message):
    with pytest.raises(LLMOutputError, match=message):
        parse_output(content)


# -- against a real OpenAI-compatible HTTP server ------------------------------------------
RECORDED = {  # a structured output as an OpenAI-compatible server returned it for the document below
    "facts": [
        {"subject": "SAP S/4HANA Cloud", "subject_type": "Service", "predicate": "SLA", "value": "99,7",
         "unit": "%", "fact_type": "SERVICE_LEVEL", "valid_from": "2024-01-01", "valid_until": None,
         "evidence": "un SLA de 99,7 %", "confidence": 0.9},
        {"subject": "support", "subject_type": None, "predicate": "délai de première réponse", "value": "4",
         "unit": "heures", "fact_type": "DURATION", "valid_from": None, "valid_until": None,
         "evidence": "répond en moins de 4 heures", "confidence": 0.7},
    ],
}


@pytest.fixture
def openai_server():
    """A small OpenAI-compatible chat-completions app served by uvicorn on loopback: it records each
    request and answers with the recorded structured output (or a refusal when asked to)."""
    import threading

    import uvicorn
    from fastapi import FastAPI

    from tests.facts.servers import free_port, wait_for_port

    app, requests = FastAPI(), []

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> dict:
        body = await request.json()
        requests.append({"body": body, "authorization": request.headers.get("authorization")})
        refuse = "REFUSE" in body["messages"][-1]["content"]
        message = {"role": "assistant", "content": None if refuse else json.dumps(RECORDED),
                   "refusal": "I cannot help with that." if refuse else None}
        return {"id": "chatcmpl-recorded", "object": "chat.completion", "created": 1_700_000_000,
                "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 321, "completion_tokens": 123, "total_tokens": 444}}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}/v1", requests
    server.should_exit = True
    thread.join(timeout=10)


def test_the_real_openai_client_against_a_local_compatible_server(openai_server):
    base_url, requests = openai_server
    extractor = LLMExtractor(LLMConfig(base_url=base_url, model="recorded-model", token_budget=10_000))
    budget = extractor.new_budget()
    doc = document("contrat", ["Nous garantissons un SLA de 99,7 %.", "Le support répond en moins de 4 heures."])
    result = extractor.extract(DocumentContext("t", doc), budget)

    (request,) = requests
    assert request["body"]["model"] == "recorded-model" and request["body"]["temperature"] == 0
    assert request["body"]["response_format"] == response_format()  # strict JSON schema sent as such
    assert "99,7 %" in request["body"]["messages"][-1]["content"]
    assert request["authorization"] == "Bearer not-needed"  # a local server needs no key
    assert (budget.used, budget.calls) == (444, 1)
    assert {(f.subject, f.predicate, f.value, f.unit, f.extraction_method, f.extraction_model, f.prompt_id)
            for f in result.facts} == {
        ("SAP S/4HANA Cloud", "SLA", 0.997, "ratio", "llm", "recorded-model", PROMPT_ID),
        ("support", "délai de première réponse", 4.0, "hour", "llm", "recorded-model", PROMPT_ID)}
    assert result.problems == []


def test_a_refusal_from_the_server_is_reported_not_raised(openai_server):
    base_url, _ = openai_server
    extractor = LLMExtractor(LLMConfig(base_url=base_url, model="recorded-model"))
    result = extractor.extract(DocumentContext("t", document("r", "REFUSE")), extractor.new_budget())
    assert result.facts == [] and result.problems == ["r: the model refused: I cannot help with that."]
