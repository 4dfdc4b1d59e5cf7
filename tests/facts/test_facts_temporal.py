"""Temporal edge cases: touching and overlapping intervals, open ends, equal bounds.

Interval arithmetic is checked against a brute-force reference (the set of days an interval
covers on a grid that open ends reach beyond), over every interval that can be drawn from four
consecutive days and open ends; conflict rules are checked on named cases.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from knowledge_plane.facts.conflicts import classify
from knowledge_plane.facts.model import APPROVED, CONTRADICTS, DUPLICATES, OUTDATED, OVERRIDES, PROPOSED
from knowledge_plane.facts.temporal import DateError, day_before, overlaps, parse_date, starts_before, valid_at
from tests.facts.support import make_fact

DAYS = [dt.date(2024, 5, 30) + dt.timedelta(days=n) for n in range(4)]  # 30 May … 2 June, across a month end
GRID = [DAYS[0] - dt.timedelta(days=1), *DAYS, DAYS[-1] + dt.timedelta(days=1)]
BOUNDS = [None, *DAYS]
INTERVALS = [(a, b) for a in BOUNDS for b in BOUNDS if a is None or b is None or a <= b]


def _days(interval):
    start, end = interval
    return {d for d in GRID if (start is None or start <= d) and (end is None or d <= end)}


def _name(interval):
    start, end = interval
    return f"{start.strftime('%m%d') if start else '-inf'}..{end.strftime('%m%d') if end else '+inf'}"


PAIRS = list(itertools.combinations_with_replacement(INTERVALS, 2))


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{_name(a)}|{_name(b)}" for a, b in PAIRS])
def test_overlap_matches_day_sets(a, b):
    expected = bool(_days(a) & _days(b))
    assert overlaps(*a, *b) is expected
    assert overlaps(*b, *a) is expected  # symmetric


@pytest.mark.parametrize("interval", INTERVALS, ids=[_name(i) for i in INTERVALS])
def test_valid_at_matches_day_sets(interval):
    covered = _days(interval)
    assert [valid_at(*interval, d) for d in GRID] == [d in covered for d in GRID]


def test_grid_is_large_enough():
    assert len(INTERVALS) == 19 and len(list(itertools.combinations_with_replacement(INTERVALS, 2))) == 190


@pytest.mark.parametrize(("a", "b", "expected"), [
    (None, None, False), (None, DAYS[0], True), (DAYS[0], None, False), (DAYS[0], DAYS[0], False),
    (DAYS[0], DAYS[1], True), (DAYS[1], DAYS[0], False),
])
def test_starts_before(a, b, expected):
    assert starts_before(a, b) is expected


def test_day_before_crosses_month_and_leap_day():
    assert day_before(dt.date(2024, 6, 1)) == dt.date(2024, 5, 31)
    assert day_before(dt.date(2024, 3, 1)) == dt.date(2024, 2, 29)


@pytest.mark.parametrize("bad", ["2024-13-01", "2024-02-30", "15/03/2024", "yesterday", "2024-3"])
def test_bad_dates_are_named(bad):
    with pytest.raises(DateError, match="expected YYYY-MM-DD"):
        parse_date(bad)


# -- conflict rules on temporal edge cases --------------------------------------------------
# (old value, old from, old until, old status) vs (new value, new from, new until, new status) → kinds
CASES = {
    "same start, other value": ((0.995, "2024-01-01", None, PROPOSED), (0.997, "2024-01-01", None, PROPOSED),
                                {CONTRADICTS}),
    "both open start, other value": ((0.995, None, None, PROPOSED), (0.997, None, None, PROPOSED), {CONTRADICTS}),
    "same start, equal closed bounds": ((0.995, "2024-01-01", "2024-01-31", PROPOSED),
                                        (0.997, "2024-01-01", "2024-01-31", PROPOSED), {CONTRADICTS}),
    "single-day intervals, same day": ((0.995, "2024-01-01", "2024-01-01", PROPOSED),
                                       (0.997, "2024-01-01", "2024-01-01", PROPOSED), {CONTRADICTS}),
    "later start, overlapping": ((0.995, "2024-01-01", None, PROPOSED), (0.997, "2024-06-01", None, PROPOSED),
                                 {OVERRIDES}),
    "later start, overlapping, newer approved": ((0.995, "2024-01-01", None, APPROVED),
                                                 (0.997, "2024-06-01", None, APPROVED), {OVERRIDES, OUTDATED}),
    "older open start, newer approved": ((0.995, None, None, PROPOSED), (0.997, "2024-06-01", None, APPROVED),
                                         {OVERRIDES, OUTDATED}),
    "overlap of exactly one day": ((0.995, "2024-01-01", "2024-06-01", PROPOSED),
                                   (0.997, "2024-06-01", None, APPROVED), {OVERRIDES}),
    "touching: closed the day before": ((0.995, "2024-01-01", "2024-05-31", APPROVED),
                                        (0.997, "2024-06-01", None, APPROVED), set()),
    "disjoint with a gap": ((0.995, "2024-01-01", "2024-03-31", APPROVED), (0.997, "2024-06-01", None, APPROVED),
                            set()),
    "newer closed inside the older": ((0.995, "2024-01-01", None, PROPOSED),
                                      (0.997, "2024-06-01", "2024-06-30", PROPOSED), {OVERRIDES}),
    "older open, newer only proposed": ((0.995, "2024-01-01", None, APPROVED), (0.997, "2024-06-01", None, PROPOSED),
                                        {OVERRIDES}),
    "older closed, newer approved: not outdated": ((0.995, "2024-01-01", "2024-12-31", PROPOSED),
                                                   (0.997, "2024-06-01", None, APPROVED), {OVERRIDES}),
    "same value, overlapping, other source": ((0.997, "2024-01-01", None, PROPOSED),
                                              (0.997, "2024-06-01", None, APPROVED), {DUPLICATES}),
    "same value, touching, other source": ((0.997, "2024-01-01", "2024-05-31", PROPOSED),
                                           (0.997, "2024-06-01", None, PROPOSED), set()),
    "same value written 99.7 % and 0.997": ((0.997, "2024-01-01", None, PROPOSED), ("99,7 %", "2024-01-01", None,
                                                                                    PROPOSED), {DUPLICATES}),
    "within tolerance": ((0.997, "2024-01-01", None, PROPOSED), (0.99700001, "2024-01-01", None, PROPOSED),
                         {DUPLICATES}),
    "rejected never conflicts": ((0.995, "2024-01-01", None, "rejected"), (0.997, "2024-01-01", None, PROPOSED),
                                 set()),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_conflict_rules_on_intervals(case, order):
    (v1, f1, u1, s1), (v2, f2, u2, s2), expected = CASES[case]
    old = make_fact("t", v1, None if isinstance(v1, str) else "ratio", valid_from=f1, valid_until=u1, status=s1,
                    doc="doc-old")
    new = make_fact("t", v2, None if isinstance(v2, str) else "ratio", valid_from=f2, valid_until=u2, status=s2,
                    doc="doc-new")
    pair = (old, new) if order == "old-first" else (new, old)
    relations = classify(*pair)
    assert {r.kind for r in relations} == expected
    for r in relations:  # directions do not depend on argument order
        if r.kind == OVERRIDES:
            assert (r.from_id, r.to_id) == (new.id, old.id)
        if r.kind == OUTDATED:
            assert (r.from_id, r.to_id) == (old.id, new.id)


def test_same_source_same_value_is_not_a_duplicate():
    a = make_fact("t", 0.997, "ratio", valid_from="2024-01-01", doc="same")
    b = make_fact("t", 0.997, "ratio", valid_from="2024-02-01", doc="same")
    assert classify(a, b) == []


def test_other_tenant_or_key_never_relates():
    a = make_fact("t1", 0.995, "ratio")
    assert classify(a, make_fact("t2", 0.997, "ratio")) == []
    assert classify(a, make_fact("t1", 0.997, "ratio", predicate="délai de retour")) == []
    assert classify(a, make_fact("t1", 0.997, "ratio", subject="autre service")) == []
