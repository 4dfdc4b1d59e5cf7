"""Review from the console: the queue (filters, keyset pages, bulk decisions), fact and conflict pages,
and bad input (another tenant's id, XSS in values and titles, oversized forms) refused with nothing changed."""

from __future__ import annotations

import datetime as dt
import html

from knowledge_plane.facts.model import AuditEntry
from tests.console.conftest import OTHER_TENANT, TENANT, XSS, audit_actions
from tests.facts.support import make_fact


def test_queue_filters_and_keyset_pages(browser, seeded):
    extra = [make_fact(TENANT, i, "jours", subject=f"pièce {i:03d}", predicate="délai de retour", doc=f"d{i}",
                       fact_type="DURATION") for i in range(30)]
    seeded.store.upsert_facts(TENANT, extra)
    vera = browser("vera")
    api = vera.client
    first = api.get("/api/v1/facts", params={"limit": 12, "sort": "subject"}).json()
    assert first["total"] == 34  # 30 + a, b (conflicted), retour, xss; never the other tenant's
    seen = [f["id"] for f in first["facts"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/api/v1/facts", params={"limit": 12, "sort": "subject", "cursor": cursor}).json()
        seen += [f["id"] for f in page["facts"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 34
    by_id = {f.id: f for f in seeded.store.get_facts(TENANT, seen)}
    subjects = [by_id[i].subject_key for i in seen]
    assert subjects == sorted(subjects)
    conflicted = api.get("/api/v1/facts", params={"status": "conflicted"}).json()
    assert {f["id"] for f in conflicted["facts"]} == {seeded.ids["a"], seeded.ids["b"]}
    assert api.get("/api/v1/facts", params={"fact_type": "TEXT"}).json()["total"] == 1
    assert api.get("/api/v1/facts", params={"subject": "retour"}).json()["total"] == 1
    assert api.get("/api/v1/facts", params={"age": 1}).json()["total"] == 0  # all created just now
    assert api.get("/api/v1/facts", params={"cursor": "garbage"}).status_code == 400
    blank_form = vera.client.get("/queue", params={"namespace": "", "age": "", "critical": "", "sort": "oldest"})
    assert blank_form.status_code == 200  # the filter form sends unset filters as empty fields
    assert vera.client.get("/queue", params={"age": "old"}).status_code == 400
    html = vera.client.get("/queue", params={"limit": 10}).text
    assert html.count('class="fact-row"') == 10 and 'hx-get="/queue?' in html and "rows_only=true" in html
    rows = vera.client.get("/queue", params={"limit": 10, "rows_only": "true"}).text
    assert "<html" not in rows and rows.count('class="fact-row"') == 10


def test_bulk_approve_and_reject_with_a_reason(browser, seeded):
    rita = browser("rita")
    ids = seeded.ids
    response = rita.post("/queue/decide", {"action": "approve", "ids": [ids["retour"], ids["a"]]})
    assert response.status_code == 303
    page = rita.client.get(response.headers["location"]).text
    assert "approved 1; skipped 1 in an open contradiction" in page
    assert seeded.store.get_facts(TENANT, [ids["retour"]])[0].approved_by == "account:rita"
    nothing = rita.post("/queue/decide", {"action": "approve"})
    assert nothing.status_code == 400 and "select at least one fact to approve" in nothing.text
    refused = rita.post("/queue/decide", {"action": "reject", "ids": [ids["xss"]], "reason": ""})
    assert refused.status_code == 409 and "a rejection needs a reason" in refused.text
    rita.post("/queue/decide", {"action": "reject", "ids": [ids["xss"]], "reason": "not a fact"})
    fact = seeded.store.get_facts(TENANT, [ids["xss"]])[0]
    assert (fact.status, fact.reason) == ("rejected", "not a fact")
    assert ("rejected", "account:rita") in audit_actions(seeded.store)


def test_fact_page_shows_the_source_passage_highlighted_and_the_audit_trail(browser, seeded):
    html = browser("vera").client.get(f"/facts/{seeded.ids['a']}").text
    assert "contrat-a@v1" in html
    assert "disponibilité de <mark>99,7 %</mark> (SLA)" in html  # stored as 99.7 %, written 99,7 %
    assert "CONTRADICTS" in html and "99.5 %" in html  # the relation, with the other side's value
    assert "status_changed" in html  # proposed → conflicted by extraction, in the audit trail


def test_conflict_side_by_side_resolve_is_audited_with_the_reviewer(browser, seeded):
    rita = browser("rita")
    conflicts = rita.client.get("/api/v1/conflicts").json()
    relation = next(c for c in conflicts if c["kind"] == "CONTRADICTS")
    page = rita.client.get(f"/conflicts/{relation['id']}").text
    assert page.count('class="side"') == 2 and "99,7" in page or "99.7" in page
    response = rita.post(f"/conflicts/{relation['id']}/decide", {"action": "resolve", "fact": seeded.ids["a"]})
    assert response.status_code == 303
    after = rita.client.get(response.headers["location"]).text
    assert "Resolved by account:rita" in after
    a, b = seeded.store.get_facts(TENANT, [seeded.ids["a"]])[0], seeded.store.get_facts(TENANT, [seeded.ids["b"]])[0]
    assert (a.status, b.status) == ("approved", "rejected")
    actions = audit_actions(seeded.store)
    assert ("conflict_resolved", "account:rita") in actions and ("approved", "account:rita") in actions
    assert "account:rita" in rita.client.get("/audit").text


def test_conflict_action_on_a_fact_outside_the_conflict_is_refused(browser, seeded):
    rita = browser("rita")
    relation = rita.client.get("/api/v1/conflicts").json()[0]
    response = rita.post(f"/conflicts/{relation['id']}/decide", {"action": "approve", "fact": seeded.ids["retour"]})
    assert response.status_code == 400 and "is not a side of conflict" in response.text
    assert seeded.store.get_facts(TENANT, [seeded.ids["retour"]])[0].status == "proposed"


def test_another_tenants_fact_is_unknown_and_unchanged(browser, seeded):
    rita = browser("rita")
    foreign = seeded.ids["foreign"]
    assert rita.client.get(f"/facts/{foreign}").status_code == 404
    assert rita.client.get(f"/api/v1/facts/{foreign}").status_code == 404
    response = rita.post("/queue/decide", {"action": "approve", "ids": [foreign]})
    assert response.status_code == 404 and f"unknown fact id {foreign!r}" in html.unescape(response.text)
    api = rita.client.post("/api/v1/facts/reject", json={"ids": [foreign], "reason": "x"},
                           headers={"X-CSRF-Token": rita.csrf()})
    assert api.status_code == 404
    assert seeded.store.get_facts(OTHER_TENANT, [foreign])[0].status == "proposed"
    assert seeded.store.audit_log(OTHER_TENANT) == []


def test_xss_in_a_fact_value_and_a_document_title_is_escaped(browser, seeded):
    seeded.store.append_audit(TENANT, [AuditEntry(TENANT, "note", "system", detail={"x": XSS})])
    vera = browser("vera")
    for url in ("/queue", f"/facts/{seeded.ids['xss']}", f"/facts/{seeded.ids['a']}", "/audit"):
        html = vera.client.get(url).text
        assert XSS not in html, url
    assert "&lt;script&gt;" in vera.client.get(f"/facts/{seeded.ids['xss']}").text
    assert "Contrat &lt;script&gt;" in vera.client.get(f"/facts/{seeded.ids['a']}").text  # the document title
    assert "script-src 'self'" in vera.client.get("/queue").headers["content-security-policy"]


def test_an_oversized_form_is_refused_and_changes_nothing(browser, seeded):
    rita = browser("rita")
    response = rita.post("/queue/decide", {"action": "reject", "ids": [seeded.ids["retour"]], "reason": "x" * 20000})
    assert response.status_code == 413 and "request body too large" in response.text
    # a body that does not announce its length (chunked) is cut off at the limit too
    body = f"action=reject&ids={seeded.ids['retour']}&csrf_token={rita.csrf()}&reason=".encode() + b"x" * 20000
    streamed = rita.client.post("/queue/decide", content=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413, streamed.text
    assert seeded.store.get_facts(TENANT, [seeded.ids["retour"]])[0].status == "proposed"


def test_timeline_and_point_in_time(browser, seeded):
    later = make_fact(TENANT, 99.9, "%", doc="avenant", valid_from="2024-06-01", status="approved")
    seeded.store.upsert_facts(TENANT, [later])
    vera = browser("vera")
    html = vera.client.get("/timeline", params={"subject": "service", "predicate": "SLA", "on": "2024-07-01"}).text
    assert 'id="held"' in html and "<svg" in html and later.id[:8] in html.split('id="held"')[1].split("</section>")[0]
    data = vera.client.get("/api/v1/timeline", params={"subject": "service", "predicate": "SLA",
                                                       "on": "2024-03-15"}).json()
    assert len(data["entries"]) == 3 and data["held"] == []  # nothing approved held in March
    bad = vera.client.get("/api/v1/timeline", params={"subject": "service", "predicate": "SLA", "on": "15/03/2024"})
    assert bad.status_code == 400


def test_entity_types_pending_approval(browser, seeded):
    seeded.store.register_entity_types(TENANT, {"Vehicle": "pending", "Part": "approved"})
    assert [t["type_name"] for t in browser("vera").client.get("/api/v1/entity-types",
                                                               params={"status": "pending"}).json()] == ["Vehicle"]
    assert browser("rita").post("/entity-types/Vehicle/decide", {"action": "approve"}).status_code == 403
    adam = browser("adam")
    assert adam.post("/entity-types/Vehicle/decide", {"action": "approve"}).status_code == 303
    assert ("type_approved", "account:adam") in audit_actions(seeded.store)
    assert dt.date.today()  # the decision is dated by the store
