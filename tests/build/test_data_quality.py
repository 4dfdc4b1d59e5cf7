"""Great Expectations suites as a blocking check: a sound build passes them, a bad table is held back."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from knowledge_plane.build import stages
from knowledge_plane.build.data_quality import CHECK_NAME, data_quality_check
from knowledge_plane.facts.config import load_rules
from knowledge_plane.storage.registry import LATEST, Registry


def _check(report: dict) -> dict:
    return next(c for c in report["checks"] if c["name"] == CHECK_NAME)


def test_an_unknown_language_is_quarantined_on_parsing_and_the_rest_is_published(settings, build_corpus):
    """The suite is the second line of defence: one file in a language nobody serves is refused with its
    reason when it is parsed, and its namespace is published without it."""
    bad = settings.paths.corpus_dir / "policies" / "consignes-echange-standard.md"
    bad.write_text(bad.read_text(encoding="utf-8").replace("lang: fr", "lang: de", 1), encoding="utf-8")
    success, reports = build_corpus(settings, ["knowledge:policies"])
    report = reports["knowledge:policies"]
    assert success and report["promoted"] and _check(report)["passed"], report
    [quarantined] = report["quarantined"]
    assert quarantined["path"].endswith("consignes-echange-standard.md")
    assert "'lang' must be one of en, fr, got 'de'" in quarantined["detail"], quarantined


def test_a_language_the_suite_refuses_holds_its_namespace_back_while_a_sound_one_is_promoted(settings, build_corpus,
                                                                                             monkeypatch):
    # A French-only deployment's suite (the parser accepts en and fr): one English file reaches the chunks.
    monkeypatch.setattr("knowledge_plane.build.data_quality.LANGUAGES", ("fr",))
    bad = settings.paths.corpus_dir / "policies" / "consignes-echange-standard.md"
    bad.write_text(bad.read_text(encoding="utf-8").replace("lang: fr", "lang: en", 1), encoding="utf-8")
    success, reports = build_corpus(settings, ["knowledge:faq", "knowledge:policies"])
    assert not success  # a namespace was held back: the run fails

    sound, broken = reports["knowledge:faq"], reports["knowledge:policies"]
    assert sound["promoted"] and _check(sound)["passed"], sound
    detail = _check(broken)["detail"]
    assert not _check(broken)["passed"]
    assert "expect_column_values_to_be_in_set(lang)" in detail and "(e.g. 'en'" in detail, detail
    assert broken["held_back"] and not broken["promoted"]
    assert CHECK_NAME in broken["reason"], broken["reason"]

    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    assert LATEST not in registry.aliases("knowledge:policies").get("knowledge:policies", {})
    for namespace in ("knowledge:faq", "knowledge:policies"):
        version = registry.versions(namespace)[-1]
        docs = Path(version.path) / version.manifest["data_docs"]
        assert docs.is_file(), docs
        pages = list((docs.parent / "validations").rglob("*.html"))
        assert {p.relative_to(docs.parent / "validations").parts[0] for p in pages} == {"chunks", "facts"}
        assert version.manifest["data_quality"]["rows"]["chunks"] == version.manifest["counts"]["chunks"]
    chunk_pages = Path(registry.versions("knowledge:policies")[-1].path) / "data_docs" / "validations" / "chunks"
    page = next(chunk_pages.rglob("*.html")).read_text(encoding="utf-8")
    failed_page = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "values must belong to this set: fr . 8 unexpected values found." in failed_page, failed_page

    # A no-change rebuild takes the stored result and its Data Docs: Great Expectations does not run again.
    def not_again(*_):
        raise AssertionError("the suites ran again on unchanged content")

    monkeypatch.setattr(stages, "data_quality_check", not_again)
    success, again = build_corpus(settings, ["knowledge:faq"])
    assert success and _check(again["knowledge:faq"]) == _check(sound)
    # Nor for a version that holds no result of its own (built before the suites): the cache keeps it by content.
    faq_version = registry.versions("knowledge:faq")[-1]
    shutil.rmtree(Path(faq_version.path) / "data_docs")
    success, again = build_corpus(settings, ["knowledge:faq"])
    assert success and _check(again["knowledge:faq"]) == _check(sound)


def _chunk(chunk_id: str, **changes) -> dict:
    return {"chunk_id": chunk_id, "doc_id": "doc", "text": "Le délai est de 14 jours.", "n_tokens": 12,
            "truth_level": "L2", "lang": "fr", "updated": "2026-02-12", **changes}


def _fact(fact_id: str, **changes) -> dict:
    return {"id": fact_id, "fact_type": "DURATION", "value_type": "number", "value": 14.0,
            "valid_from": "2026-01-01", "valid_until": None, "approved_at": "2026-02-12T10:00:00+00:00", **changes}


def test_each_broken_rule_is_named_with_its_count(tmp_path: Path):
    chunks = [
        _chunk("a"), _chunk("a"),  # a duplicate id
        _chunk(None), _chunk("b", doc_id=None), _chunk("c", text="  "),
        _chunk("d", n_tokens=257), _chunk("e", lang="de"), _chunk("g", truth_level="L9"),
        _chunk("f", updated="le 12 du mois"),
    ]
    facts = [_fact("f1"), _fact("f1", value=-2.0), _fact("f2", fact_type="COST", value=-0.5),
             _fact("f3", valid_from="hier"), _fact("f4", fact_type="GUESS"), _fact("f5", value_type="text", value="-9")]
    quality = data_quality_check(chunks, facts)
    detail = quality.check.detail
    assert not quality.check.passed
    expected = [
        "chunks.expect_column_values_to_be_unique(chunk_id): 2 unexpected",
        "chunks.expect_column_values_to_not_be_null(chunk_id): 1 unexpected",
        "chunks.expect_column_values_to_not_be_null(doc_id): 1 unexpected",
        "chunks.expect_column_values_to_match_regex(text): 1 unexpected",
        "chunks.expect_column_values_to_be_between(n_tokens): 1 unexpected of 9 (e.g. 257)",
        "chunks.expect_column_values_to_be_in_set(lang): 1 unexpected of 9 (e.g. 'de')",
        "chunks.expect_column_values_to_be_in_set(truth_level): 1 unexpected of 9 (e.g. 'L9')",
        "chunks.expect_column_values_to_be_dateutil_parseable(updated): 1 unexpected",
        "facts.expect_column_values_to_be_unique(id): 2 unexpected",
        "facts.expect_column_values_to_be_between(number, where fact_type=='DURATION'): 1 unexpected",
        "facts.expect_column_values_to_be_between(number, where fact_type=='COST'): 1 unexpected of 1 (e.g. -0.5)",
        "facts.expect_column_values_to_be_dateutil_parseable(valid_from): 1 unexpected",
        "facts.expect_column_values_to_be_in_set(fact_type): 1 unexpected of 6 (e.g. 'GUESS')",
    ]
    for fragment in expected:
        assert fragment in detail, (fragment, detail)
    assert detail.startswith(f"{len(expected)} of {quality.summary['expectations']} expectations failed"), detail
    assert quality.summary["failed"] and quality.summary["rows"] == {"chunks": 9, "facts": 6}

    index = quality.write_docs(tmp_path / "data_docs")
    assert index.is_file() and "chunks" in index.read_text(encoding="utf-8")


def test_the_suites_pass_a_sound_table_and_take_their_bounds_from_the_rules():
    assert load_rules().value_bounds["COST"] == (0.0, None)
    quality = data_quality_check([_chunk("a"), _chunk("b", updated=None)], [_fact("f1"), _fact("f2", value=0.0)])
    assert quality.check.passed, quality.check.detail
    assert quality.check.detail == f"{quality.summary['expectations']} expectations passed"
