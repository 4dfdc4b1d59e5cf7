"""Correcting a fact's value from the fact page and the REST API: a new fact supersedes the old one,
both audited with the signed-in reviewer; viewers, forged forms and bad values change nothing."""

from __future__ import annotations

from knowledge_plane.facts.queries import facts_at
from tests.console.conftest import TENANT, audit_actions


def _fact(seeded, fact_id):
    return seeded.store.get_facts(TENANT, [fact_id])[0]


def test_a_reviewer_corrects_a_value_from_the_fact_page(browser, seeded):
    rita = browser("rita")
    old_id = seeded.ids["retour"]
    before = _fact(seeded, old_id)
    response = rita.post(f"/facts/{old_id}/correct", {"value": "45 jours", "reason": "typo in the extraction"})
    assert response.status_code == 303
    new_id = response.headers["location"].rsplit("/", 1)[1]
    assert new_id != old_id
    new, old = _fact(seeded, new_id), _fact(seeded, old_id)
    assert (new.object, new.value, new.unit, new.extraction_method) == ("45 jours", 45.0, before.unit, "correction")
    assert (new.status, new.approved_by) == ("approved", "account:rita")
    assert (new.subject_key, new.predicate_key, new.source_document) == \
        (before.subject_key, before.predicate_key, before.source_document)
    # a correction changes what the store believes, not when the statement held in the world
    assert (new.valid_from, new.valid_until) == (before.valid_from, before.valid_until)
    assert old.status == "rejected" and old.reason == f"corrected by {new_id}: typo in the extraction"
    assert old.valid_until == before.valid_until
    assert [f.id for f in facts_at(seeded.store, TENANT, "retour", "délai de retour", "2024-03-15")] == [new_id]
    old_audit = seeded.store.audit_log(TENANT, fact_id=old_id)
    corrected = next(e for e in old_audit if e.action == "corrected")
    assert corrected.actor == "account:rita"
    assert corrected.detail == {"superseded_by": new_id, "before": "30 jours", "after": "45 jours",
                                "reason": "typo in the extraction"}
    created = next(e for e in seeded.store.audit_log(TENANT, fact_id=new_id) if e.action == "created")
    assert created.actor == "account:rita" and created.detail["corrects"] == old_id
    page = rita.client.get(response.headers["location"]).text
    assert f'href="/facts/{old_id}" id="corrects"' in page and "corrected" in page
    assert f'href="/facts/{new_id}" id="superseded-by"' in rita.client.get(f"/facts/{old_id}").text


def test_a_viewer_and_a_forged_form_cannot_correct(browser, seeded):
    old_id = seeded.ids["retour"]
    vera = browser("vera")
    assert 'id="correct-form"' not in vera.client.get(f"/facts/{old_id}").text
    assert vera.post(f"/facts/{old_id}/correct", {"value": "45 jours", "reason": "x"}).status_code == 403
    api = vera.client.post("/api/v1/facts/correct", json={"fact_id": old_id, "value": "45 jours", "reason": "x"},
                           headers={"X-CSRF-Token": vera.csrf()})
    assert api.status_code == 403
    rita = browser("rita")
    forged = rita.client.post(f"/facts/{old_id}/correct",
                              data={"value": "45 jours", "reason": "x", "csrf_token": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    no_header = rita.client.post("/api/v1/facts/correct", json={"fact_id": old_id, "value": "45 jours", "reason": "x"})
    assert no_header.status_code == 403
    assert _fact(seeded, old_id).status == "proposed"
    assert not [a for a, _ in audit_actions(seeded.store) if a in ("corrected", "created")]


def test_api_correction_settles_or_opens_conflicts_like_any_fact(browser, seeded):
    rita = browser("rita")
    headers = {"X-CSRF-Token": rita.csrf()}
    a, b = seeded.ids["a"], seeded.ids["b"]
    # a (99.7 %) contradicts b (99.5 %); correcting a to 98 % still contradicts b: the new fact waits
    response = rita.client.post("/api/v1/facts/correct", headers=headers,
                                json={"fact_id": a, "value": "98 %", "reason": "read from the wrong table"})
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["corrected"] == a and first["status"] == "conflicted"
    open_kinds = {(r["kind"], frozenset((r["from_id"], r["to_id"])))
                  for r in rita.client.get("/api/v1/conflicts").json()}
    assert ("CONTRADICTS", frozenset((first["new_id"], b))) in open_kinds
    assert ("CONTRADICTS", frozenset((a, b))) not in open_kinds  # closed with the old fact
    # corrected again to b's value: the contradiction closes, the correction is approved
    second = rita.client.post("/api/v1/facts/correct", headers=headers,
                              json={"fact_id": first["new_id"], "value": "99,5 %", "reason": "the SLA annex says 99,5"})
    assert second.json()["status"] == "approved"
    assert _fact(seeded, second.json()["new_id"]).value == _fact(seeded, b).value
    assert not [c for c in rita.client.get("/api/v1/conflicts").json() if c["kind"] == "CONTRADICTS"]
    assert [f["status"] for f in (rita.client.get(f"/api/v1/facts/{i}").json() for i in (a, first["new_id"]))] == \
        ["rejected", "rejected"]


def test_bad_corrections_are_refused_with_the_reason(browser, seeded):
    rita = browser("rita")
    headers = {"X-CSRF-Token": rita.csrf()}
    retour = seeded.ids["retour"]

    def correct(fact_id, value, reason="wrong"):
        return rita.client.post("/api/v1/facts/correct", headers=headers,
                                json={"fact_id": fact_id, "value": value, "reason": reason})

    not_a_number = correct(retour, "beaucoup")
    assert not_a_number.status_code == 409 and "holds a number (30 jours)" in not_a_number.json()["detail"]
    wrong_unit = correct(retour, "45 €")
    assert wrong_unit.status_code == 409 and "does not measure what 30 jours" in wrong_unit.json()["detail"]
    same = correct(retour, "30 jours")
    assert same.status_code == 409 and "nothing to correct" in same.json()["detail"]
    assert correct(retour, "45 jours", reason="").status_code == 422
    assert correct(seeded.ids["foreign"], "45 jours").status_code == 404
    page = rita.post(f"/facts/{retour}/correct", {"value": "45 jours", "reason": ""})
    assert page.status_code == 409 and "a correction needs a reason" in page.text
    assert _fact(seeded, retour).status == "proposed"
    rita.client.post("/api/v1/facts/reject", headers=headers, json={"ids": [retour], "reason": "duplicate"})
    rejected = correct(retour, "45 jours")
    assert rejected.status_code == 409 and "is rejected" in rejected.json()["detail"]
    assert not [a for a, _ in audit_actions(seeded.store) if a in ("corrected", "created")]


def test_the_cli_corrects_through_the_same_review_function(seeded, registry_url, monkeypatch, capsys):
    import json

    from knowledge_plane.cli.main import main

    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url)
    monkeypatch.setenv("KNOWLEDGE_TENANT_ID", TENANT)
    old_id = seeded.ids["retour"]
    assert main(["facts", "edit", old_id[:8], "45 jours", "--reason", "typo", "--by", "gina", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["corrected"] == old_id and result["status"] == "approved"
    assert ("corrected", "gina") in audit_actions(seeded.store)
    assert main(["facts", "edit", old_id[:8], "50 jours", "--reason", "again"]) == 1
    assert "is rejected" in capsys.readouterr().err
