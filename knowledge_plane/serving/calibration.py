"""Calibration of the score thresholds: how many on-topic questions get an answer, how many off-topic ones don't.

The question sets live in ``bench/calibration/`` (``on_topic*.jsonl``: a question and the namespace
that answers it; ``off_topic*.txt``: one question a line). Three generations: the first thresholds
were tuned on the plain sets; the ``_holdout`` sets, written next, showed off-topic questions
getting through (71 % turned away), so the thresholds were re-tuned on both; the ``_final`` sets
were written after that and only ever measured.

What is measured is the threshold gate: a question is answered when it passes it (``success``,
``low_confidence``, or ``refused`` — the gate passed and the truth-level rule decided), turned
away when it gets ``needs_clarification``. An on-topic question is asked by an actor granted its
namespace; every off-topic question is asked by one actor per threshold family (documentation, KPI
runbooks, code), so each threshold is measured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from knowledge_plane.serving.access import ACTORS, Actor
from knowledge_plane.serving.query_engine import QueryEngine, QueryRequest
from knowledge_plane.serving.retrieval import LOW_CONFIDENCE, REFUSED, SUCCESS
from knowledge_plane.serving.snapshot import Snapshot

CALIBRATION_DIR = Path(__file__).resolve().parents[2] / "bench" / "calibration"
ANSWERED = frozenset({SUCCESS, LOW_CONFIDENCE, REFUSED})
OFF_TOPIC_ACTORS = ("chatbot_prod", "kpi_prod", "agents_dev")


@dataclass(frozen=True)
class Question:
    text: str
    namespace: str | None = None  # the namespace that answers it; None for an off-topic question


@dataclass
class CalibrationReport:
    on_topic: int = 0
    answered: int = 0
    off_topic: int = 0
    turned_away: int = 0
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (actor, question, status)

    @property
    def answered_rate(self) -> float:
        return self.answered / self.on_topic if self.on_topic else 0.0

    @property
    def turned_away_rate(self) -> float:
        return self.turned_away / self.off_topic if self.off_topic else 0.0


SETS = ("", "_holdout", "_final")  # file-name suffixes: tuning, first held-out, final check


def load_questions(directory: Path = CALIBRATION_DIR, suffix: str = "") -> tuple[list[Question], list[Question]]:
    lines = (directory / f"on_topic{suffix}.jsonl").read_text("utf-8").splitlines()
    on_topic = [Question(item["question"], item["namespace"])
                for item in (json.loads(line) for line in lines if line.strip())]
    lines = (directory / f"off_topic{suffix}.txt").read_text("utf-8").splitlines()
    off_topic = [Question(line.strip()) for line in lines if line.strip() and not line.startswith("#")]
    return on_topic, off_topic


def actor_for(namespace: str) -> Actor:
    """The narrowest actor granted ``namespace``: the chatbot for its five, then KPI, support, agents."""
    for name in ("chatbot_prod", "kpi_prod", "support_prod", "agents_dev"):
        if ACTORS[name].may_read(namespace):
            return ACTORS[name]
    raise LookupError(f"no actor is granted {namespace}")


def evaluate(engine: QueryEngine, snapshot: Snapshot, on_topic: Iterable[Question],
             off_topic: Iterable[Question]) -> CalibrationReport:
    report = CalibrationReport()
    for q in on_topic:
        who = actor_for(q.namespace or "")
        status = engine.answer(snapshot, who, QueryRequest(q.text)).response["status"]
        report.on_topic += 1
        if status in ANSWERED:
            report.answered += 1
        else:
            report.misses.append((who.name, q.text, status))
    for q in off_topic:
        for name in OFF_TOPIC_ACTORS:
            status = engine.answer(snapshot, ACTORS[name], QueryRequest(q.text)).response["status"]
            report.off_topic += 1
            if status in ANSWERED:
                report.misses.append((name, q.text, status))
            else:
                report.turned_away += 1
    return report
