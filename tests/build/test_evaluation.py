"""Evaluation-gated promotion: golden sets beside the corpus, figures in the manifest, a blocking check."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from knowledge_plane.build.evaluation import (
    FIGURES,
    GoldenQuestion,
    GoldenSet,
    GoldenSetError,
    evaluation_check,
    load_golden,
    tolerated_drop,
)
from knowledge_plane.domain.ids import chunk_id, text_hash
from knowledge_plane.storage.registry import LATEST, Registry
from tests.conftest import SAMPLE_CORPUS

DOMAINS = sorted(p.name for p in SAMPLE_CORPUS.iterdir() if p.is_dir())


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_sample_namespace_has_a_golden_set(domain: str):
    golden = load_golden(SAMPLE_CORPUS / domain / "_golden.yaml")
    assert len(golden.questions) >= 15 and len(golden.off_topic) >= 5
    assert set(golden.floors) <= set(FIGURES)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("questions: []\n", "no questions"),
        ("questions:\n  - question: où ?\n", "question 1 needs"),
        ("questions:\n  - {question: où, doc_id: a}\nfloors: {recall: 0.5}\n", "unknown floor 'recall'"),
        ("questions:\n  - {question: où, doc_id: a}\nfloors: {mrr: 5}\n", "floor mrr must be a number"),
        ("question: []\n", "unknown keys"),
    ],
)
def test_a_malformed_golden_file_is_refused_with_the_reason(tmp_path: Path, body: str, message: str):
    path = tmp_path / "_golden.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(GoldenSetError, match=message):
        load_golden(path)


def _check(report: dict, name: str = "evaluation") -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


def test_a_sample_build_evaluates_every_namespace_and_promotes_it(settings, build_corpus, capsys, monkeypatch):
    knowledge = [f"knowledge:{domain}" for domain in DOMAINS]
    success, reports = build_corpus(settings, knowledge)
    assert success, {ns: r["reason"] for ns, r in reports.items()}
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    for domain in DOMAINS:
        namespace = f"knowledge:{domain}"
        assert reports[namespace]["promoted"], reports[namespace]["reason"]
        check = _check(reports[namespace])
        assert check["passed"] and "off-topic" in check["detail"], check
        manifest = registry.version(namespace, reports[namespace]["latest"]).manifest
        evaluation = manifest["evaluation"]
        assert set(evaluation["figures"]) == set(FIGURES)
        assert evaluation["questions"] >= 15
        # The golden file is a file of questions, not a document of the namespace.
        assert not any(d["source_path"].endswith("_golden.yaml") for d in manifest["documents"])
        golden = load_golden(settings.paths.corpus_dir / domain / "_golden.yaml")
        assert {q.doc_id for q in golden.questions} <= {d["doc_id"] for d in manifest["documents"]}

    from knowledge_plane.cli.main import main

    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(settings.paths.data_dir))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", settings.registry.url.get_secret_value())
    monkeypatch.setenv("KNOWLEDGE_CORPUS_DIR", str(settings.paths.corpus_dir))
    assert main(["status", "--json"]) == 0
    status = {row["namespace"]: row for row in json.loads(capsys.readouterr().out)}
    latest = status["knowledge:faq"]["versions"][0]
    assert set(latest["evaluation"]) == set(FIGURES)
    assert main(["status"]) == 0
    assert "R@5" in capsys.readouterr().out


def test_a_namespace_without_a_golden_set_passes_and_says_so(settings):
    from knowledge_plane.build.stages import BuildContext

    evaluation = evaluation_check(BuildContext(settings), "internal:code", np.zeros((0, 384)), [])
    assert evaluation.check.passed and evaluation.check.detail == "no golden set"
    assert evaluation.summary is None


def test_an_empty_candidate_fails_the_evaluation_instead_of_crashing(settings):
    from knowledge_plane.build.stages import BuildContext

    evaluation = evaluation_check(BuildContext(settings), "knowledge:faq", np.zeros((0, 384)), [])
    assert not evaluation.check.passed and evaluation.check.detail == "no chunks to evaluate"


def _five_words(real):
    """A broken chunker: every chunk cut to its first five words (new ids, new texts to embed)."""

    def chunk(doc):
        chunks, stats = real(doc)
        cut = []
        for c in chunks:
            text = " ".join(c.text.split()[:5])
            cut.append(dataclasses.replace(c, text=text, embed_text=text, text_hash=text_hash(text),
                                           chunk_id=chunk_id(c.doc_id, c.doc_version, f"{c.chunk_id}|{text}")))
        return cut, stats

    return chunk


def test_a_broken_chunker_is_held_back_by_the_evaluation_gate(settings, build_corpus, monkeypatch):
    namespace = "knowledge:policies"
    success, first = build_corpus(settings, [namespace])
    assert success and first[namespace]["promoted"]
    good = first[namespace]["latest"]

    from knowledge_plane.build import stages

    monkeypatch.setattr(stages, "chunk_document", _five_words(stages.chunk_document))
    monkeypatch.setattr(stages, "CHUNKER_VERSION", stages.CHUNKER_VERSION + "-five-words")
    success, second = build_corpus(settings, [namespace])

    assert not success
    report = second[namespace]
    assert not report["promoted"] and "evaluation" in report["reason"]
    check = _check(report)
    assert not check["passed"]
    # The detail names the figure that fell and the version it is compared with.
    dropped = re.search(rf"({'|'.join(FIGURES)}) dropped from [\d.]+ \(@latest {good}\) to [\d.]+", check["detail"])
    assert dropped, check["detail"]
    assert all(c["passed"] for c in report["checks"] if c["name"] != "evaluation")
    aliases = Registry(settings.registry.url.get_secret_value(), settings.tenant_id).aliases(namespace)[namespace]
    assert aliases[LATEST] == good


def test_a_figure_may_drop_by_the_margin_or_one_question_whichever_is_more():
    def golden(questions: int, off_topic: int) -> GoldenSet:
        return GoldenSet(Path("_golden.yaml"), "", tuple(GoldenQuestion(f"q{i}", "d") for i in range(questions)),
                         tuple(f"o{i}" for i in range(off_topic)))

    small, large = golden(17, 4), golden(100, 20)
    assert tolerated_drop("answer_in_top_3", 0.05, small) == pytest.approx(1 / 17)  # one question: noise
    assert tolerated_drop("turned_away", 0.05, small) == pytest.approx(0.25)  # counted over the off-topic ones
    assert tolerated_drop("answer_in_top_3", 0.05, large) == 0.05  # the margin, above one question
    assert tolerated_drop("turned_away", 0.05, large) == 0.05
    assert tolerated_drop("turned_away", 0.05, golden(17, 0)) == 0.05
