"""Optional LLM fact extraction through the ``openai`` client, with a JSON-schema structured output.

It runs only when OPENAI_API_KEY or OPENAI_BASE_URL is set (any OpenAI-compatible endpoint), only
on documents whose content changed since their last LLM extraction (the pipeline decides), and
only within a per-run token budget: a document whose estimated prompt plus the output allowance
does not fit in what is left is skipped and counted, never truncated mid-call. Tokens are counted
from the API's ``usage``; the cost is an estimate from configurable per-million-token prices.

Its facts go through the same normalisation as the rules' and stay ``proposed`` like theirs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from knowledge_plane.facts.extract import DocumentContext, Extraction
from knowledge_plane.facts.model import Fact
from knowledge_plane.facts.temporal import DateError
from knowledge_plane.settings import LLMSettings

PROMPT_ID = "facts-extract-v1"
FACT_TYPES = ["SERVICE_LEVEL", "DATA_RETENTION", "CAPACITY_LIMIT", "COST", "DURATION", "POLICY", "MEASUREMENT", "OTHER"]

_NULLABLE_STRING = {"type": ["string", "null"]}
# Strict structured outputs need every property listed in "required" and no additional properties;
# optional values are expressed as nullable types instead.
FACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": "string", "description": "What the fact is about, as named in the text"},
                    "subject_type": {**_NULLABLE_STRING, "description": "Kind of subject, e.g. Policy, Service"},
                    "predicate": {"type": "string", "description": "The property stated, e.g. 'délai de retour'"},
                    "value": {"type": "string", "description": "The value as written, without its unit"},
                    "unit": {**_NULLABLE_STRING, "description": "The unit as written, null when none"},
                    "fact_type": {"type": "string", "enum": FACT_TYPES},
                    "valid_from": {**_NULLABLE_STRING, "description": "YYYY-MM-DD if the text says when it starts"},
                    "valid_until": {**_NULLABLE_STRING, "description": "YYYY-MM-DD if the text says when it ends"},
                    "evidence": {"type": "string", "description": "The shortest exact quote stating the fact"},
                    "confidence": {"type": "number", "description": "0 to 1"},
                },
                "required": ["subject", "subject_type", "predicate", "value", "unit", "fact_type", "valid_from",
                             "valid_until", "evidence", "confidence"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["facts"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You extract verifiable facts from a company document for a governed knowledge base. "
    "A fact is one subject, one predicate and one value stated explicitly in the text: a duration, "
    "a price, a threshold, a service level, a retention period, a limit, or a policy rule. "
    "Never infer values that are not written; never convert units; keep the document's language for "
    "subject and predicate; give a date only when the text states it. Return an empty list when "
    "the document states no such fact."
)


def response_format() -> dict[str, Any]:
    """The ``response_format`` argument of ``chat.completions.create`` for strict structured output."""
    return {"type": "json_schema", "json_schema": {"name": "extracted_facts", "strict": True, "schema": FACT_SCHEMA}}


def estimate_tokens(text: str) -> int:
    # No tokenizer of the remote model is available offline; ~3.5 characters per token is a
    # cautious figure for French prose, and the budget check errs on the side of skipping.
    return math.ceil(len(text) / 3.5)


@dataclass
class LLMConfig:
    """Endpoint, model, per-run token budget and prices (the settings' ``llm`` section)."""

    api_key: str | None = None
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    token_budget: int = 200_000
    price_input_per_mtok: float = 0.15
    price_output_per_mtok: float = 0.60
    max_output_tokens: int = 2_000
    max_input_chars: int = 40_000

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.base_url)

    @classmethod
    def of(cls, llm: LLMSettings) -> LLMConfig:
        """The ``llm`` section of the process's settings."""
        return cls(
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            base_url=llm.base_url,
            model=llm.model,
            token_budget=llm.token_budget,
            price_input_per_mtok=llm.price_input_per_mtok,
            price_output_per_mtok=llm.price_output_per_mtok,
        )


@dataclass
class TokenBudget:
    """Tokens one run may spend; documents that would overrun it are skipped, not cut."""

    limit: int
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def allows(self, estimated_prompt: int, max_output: int) -> bool:
        """Whether a call estimated at this many prompt tokens, plus its whole output allowance, fits."""
        return estimated_prompt + max_output <= self.remaining

    def record(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens += int(prompt_tokens)
        self.completion_tokens += int(completion_tokens)
        self.calls += 1

    @property
    def cost(self) -> float:
        return round(self.prompt_tokens * self.price_input_per_mtok / 1e6
                     + self.completion_tokens * self.price_output_per_mtok / 1e6, 6)

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "tokens": self.used, "token_budget": self.limit, "estimated_cost_usd": self.cost,
                "skipped_over_budget": list(self.skipped)}


def document_text(document: dict[str, Any], max_chars: int) -> str:
    """The text the model reads: title, then sections under their headings, cut at a section edge."""
    parts = [f"# {document.get('title', '')}"]
    size = len(parts[0])
    for section in document.get("sections") or []:
        if section.get("kind") == "code":
            continue
        heading = " > ".join(section.get("heading_path") or [])
        block = (f"## {heading}\n" if heading else "") + str(section.get("text", ""))
        if size + len(block) > max_chars:
            break
        parts.append(block)
        size += len(block)
    return "\n\n".join(parts)


def build_messages(document: dict[str, Any], max_chars: int) -> list[dict[str, str]]:
    meta = document.get("meta") or {}
    header = (f"Document id: {document.get('doc_id')}\nLanguage: {document.get('lang', 'fr')}\n"
              f"Valid from: {meta.get('valid_from') or 'not stated'}\n"
              f"Valid until: {meta.get('valid_until') or 'not stated'}\n\n")
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": header + document_text(document, max_chars)}]


class LLMOutputError(ValueError):
    """The model's answer does not follow the schema."""


def parse_output(content: str | None) -> list[dict[str, Any]]:
    """The list of fact objects of a structured answer, checked against the schema's required keys."""
    if not content:
        raise LLMOutputError("empty answer")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise LLMOutputError(f"answer is not JSON: {exc.msg}") from exc
    items = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise LLMOutputError("answer has no 'facts' list")
    required = FACT_SCHEMA["properties"]["facts"]["items"]["required"]
    for n, item in enumerate(items):
        missing = [k for k in required if not isinstance(item, dict) or k not in item]
        if missing:
            raise LLMOutputError(f"facts[{n}] lacks {', '.join(missing)}")
    return items


def to_facts(ctx: DocumentContext, items: list[dict[str, Any]], model: str, out: Extraction) -> list[Fact]:
    """Normalised facts from parsed model output; items with bad dates or no value are reported."""
    facts = []
    method_confidence = ctx.rules.confidence("llm", ctx.document.get("truth_level"))
    for item in items:
        if not str(item.get("value", "")).strip() or not str(item.get("subject", "")).strip():
            out.problems.append(f"{ctx.doc_id}: LLM fact without subject or value skipped")
            continue
        try:
            quantity = ctx.rules.quantity(item["value"], item.get("unit"))
            confidence = min(method_confidence, max(0.0, min(1.0, float(item.get("confidence") or 0))))
            facts.append(ctx.make_fact(
                str(item["subject"]), str(item["predicate"]), quantity, method="llm", fact_type=item.get("fact_type"),
                entity_type=item.get("subject_type") or None, valid_from=item.get("valid_from"),
                valid_until=item.get("valid_until"), evidence=str(item.get("evidence") or ""),
                confidence=round(confidence, 4), model=model, prompt_id=PROMPT_ID))
        except (DateError, ValueError) as exc:
            out.problems.append(f"{ctx.doc_id}: LLM fact {item.get('subject')!r} skipped: {exc}")
    return facts


class LLMExtractor:
    """Calls an OpenAI-compatible chat completions endpoint once per changed document."""

    def __init__(self, config: LLMConfig, client: Any = None):
        self.config = config
        if client is None:
            from openai import OpenAI

            # a local OpenAI-compatible server needs no key, but the client insists on one
            client = OpenAI(api_key=config.api_key or "not-needed", base_url=config.base_url)
        self.client = client

    def new_budget(self) -> TokenBudget:
        config = self.config
        return TokenBudget(config.token_budget, config.price_input_per_mtok, config.price_output_per_mtok)

    def extract(self, ctx: DocumentContext, budget: TokenBudget) -> Extraction:
        out = Extraction()
        messages = build_messages(dict(ctx.document), self.config.max_input_chars)
        estimate = sum(estimate_tokens(m["content"]) + 4 for m in messages)
        if not budget.allows(estimate, self.config.max_output_tokens):
            budget.skipped.append(ctx.doc_id)
            out.problems.append(f"{ctx.doc_id}: LLM extraction skipped: ~{estimate} prompt tokens "
                                f"+ {self.config.max_output_tokens} output exceed the {budget.remaining} left")
            return out
        response = self.client.chat.completions.create(
            model=self.config.model, messages=messages, response_format=response_format(), temperature=0,
            max_completion_tokens=self.config.max_output_tokens)
        usage = getattr(response, "usage", None)
        budget.record(getattr(usage, "prompt_tokens", estimate), getattr(usage, "completion_tokens", 0))
        choice = response.choices[0]
        if getattr(choice.message, "refusal", None):
            out.problems.append(f"{ctx.doc_id}: the model refused: {choice.message.refusal}")
            return out
        if choice.finish_reason == "length":
            out.problems.append(f"{ctx.doc_id}: the answer hit max_completion_tokens and was dropped")
            return out
        try:
            items = parse_output(choice.message.content)
        except LLMOutputError as exc:
            out.problems.append(f"{ctx.doc_id}: {exc}")
            return out
        out.facts = to_facts(ctx, items, self.config.model, out)
        return out
