"""The enterprise file (一企一档): draft, submit, reject, resubmit, approve
with history; hazard sources graded by the server; jurisdiction on every
route; bulk import with bad rows over REST and yjtctl."""

import json

from conftest import assert_error, user

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code(body17):
    """Completes 17 characters with the GB 32100-2015 check character."""
    total = sum(CHARSET.index(ch) * (3 ** i % 31) for i, ch in enumerate(body17))
    return body17 + CHARSET[(31 - total % 31) % 31]


ENTERPRISES = [
    ("e1", "Plant One", "440106"),
    ("e2", "Plant Two", "440113", True),
    ("far", "Far Plant", "440305"),
]
USERS = [
    user("insp", "gov", "4401"),
    user("dist", "gov", "440106"),
    user("other", "gov", "4403"),
    user("e1boss", "corp", "e1", position="principal"),
    user("e2boss", "corp", "e2", position="principal"),
    user("driver", "trs", "c1"),
]
CARRIERS = [("c1", "Carrier", "440106")]

SQUARE = {"type": "Polygon", "coordinates": [[[113.30, 23.10], [113.31, 23.10],
                                              [113.31, 23.11], [113.30, 23.11],
                                              [113.30, 23.10]]]}
RECORD = {
    "name": "Plant One Chemicals",
    "credit_code": credit_code("91440106MA59XK3Q7"),
    "division": "440106",
    "park": "Nansha Chemical Park",
    "address": "1 Harbour Road",
    "location": {"type": "Point", "coordinates": [113.305, 23.105]},
    "boundary": SQUARE,
    "principal": {"name": "Li Ming", "phone": "13800000001"},
    "safety_managers": [{"name": "Wang Fang", "phone": "13800000002"}],
    "licence": "production",
    "processes": ["合成氨工艺", "加氢工艺"],
    "key": True,
}
# ammonia 2·150/10 + chlorine 4·5/5 = 34, α 1.5 (60 people): R = 51, level 2
TANKS = {"name": "液氨罐区", "kind": "tank_farm", "people_500m": 60, "declared_level": 3,
         "declared_r": 51,
         "chemicals": [{"name": "氨", "max_qty_t": 150, "critical_qty_t": 10},
                       {"name": "氯", "max_qty_t": 5, "critical_qty_t": 5}]}


def start(server):
    return server(enterprises=ENTERPRISES, users=USERS, carriers=CARRIERS)


def test_draft_submit_reject_resubmit_approve_with_history(server):
    srv = start(server)
    corp, dist, insp = srv.token("e1boss"), srv.token("dist"), srv.token("insp")

    # an incomplete draft cannot be submitted
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body={"address": "1 Harbour Road"})
    assert r.status == 200 and r.json["draft"]["status"] == "draft", r
    r = srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}")
    assert_error(r, 400, "bad_request")
    assert "lacks" in r.json["error"]["message"]
    # bad fields are refused, naming the field
    bad = dict(RECORD, credit_code=RECORD["credit_code"][:17] + "0"
               if RECORD["credit_code"][17] != "0" else RECORD["credit_code"][:17] + "1")
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body=bad)
    assert_error(r, 400, "bad_request")
    assert "credit_code" in r.json["error"]["message"]
    bowtie = {"type": "Polygon", "coordinates": [[[113.30, 23.10], [113.31, 23.11],
                                                  [113.31, 23.10], [113.30, 23.11],
                                                  [113.30, 23.10]]]}
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body={"boundary": bowtie})
    assert_error(r, 400, "bad_request")
    assert "intersects" in r.json["error"]["message"]
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body={"colour": "red"})
    assert_error(r, 400, "bad_request")

    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body=RECORD)
    assert r.status == 200, r
    r = srv.http("PUT", "/api/v1/enterprises/e1/hazard-sources/tanks", token=corp, body=TANKS)
    assert r.status == 200, r
    hs = r.json["hazard_source"]
    assert hs["r"] == 51 and hs["level"] == 2 and hs["alpha"] == 1.5 and hs["s"] == 16
    assert hs["flags"] == ["declared_level_differs"]
    r = srv.http("PUT", "/api/v1/enterprises/e1/hazard-sources/tanks", token=corp,
                 body=dict(TANKS, kind="silo"))
    assert_error(r, 400, "bad_request")

    r = srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}")
    assert r.status == 200 and r.json["draft"]["status"] == "submitted", r
    assert r.json["draft"]["flags"] == [{"source": "tanks", "name": "液氨罐区",
                                         "flags": ["declared_level_differs"]}]
    # submitted: no more edits, no second submit
    assert_error(srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body={"park": "X"}),
                 409, "conflict")
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}"),
                 409, "conflict")
    # the regulator sees the draft and its flags; a rejection needs a comment
    r = srv.http("GET", "/api/v1/enterprises/e1", token=dist)
    assert r.status == 200 and r.json["draft"]["status"] == "submitted"
    assert r.json["enterprise"]["review_status"] == "submitted"
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                          body={"decision": "reject"}), 400, "bad_request")
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                          body={"decision": "maybe", "comment": "x"}), 400, "bad_request")
    r = srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                 body={"decision": "reject", "comment": "declared level 3, computed 2"})
    assert r.status == 200 and r.json["draft"]["status"] == "rejected", r
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                          body={"decision": "approve"}), 409, "conflict")
    # the enterprise corrects and resubmits
    r = srv.http("PUT", "/api/v1/enterprises/e1/hazard-sources/tanks", token=corp,
                 body=dict(TANKS, declared_level=2))
    assert r.status == 200 and r.json["hazard_source"]["flags"] == []
    r = srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}")
    assert r.status == 200 and r.json["draft"]["flags"] == []
    r = srv.http("POST", "/api/v1/enterprises/e1/review", token=insp,
                 body={"decision": "approve", "comment": "ok"})
    assert r.status == 200, r
    ent = r.json["enterprise"]
    assert ent["version"] == 1 and ent["review_status"] == "approved"
    assert ent["hazard_level"] == 2 and ent["name"] == "Plant One Chemicals"
    assert ent["confirmed_by"] == srv.users["insp"]

    # a second version changes one field
    r = srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body={"address": "2 Harbour Road"})
    assert r.status == 200
    assert srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}").status == 200
    r = srv.http("POST", "/api/v1/enterprises/e1/review", token=dist, body={"decision": "approve"})
    assert r.status == 200 and r.json["enterprise"]["version"] == 2

    srv.restart()
    corp = srv.token("e1boss")
    r = srv.http("GET", "/api/v1/enterprises/e1/history", token=corp)
    assert r.status == 200, r
    h = r.json["history"]
    assert [v["version"] for v in h] == [2, 1]
    assert h[0]["by"] == srv.users["dist"] and h[0]["submitted_by"] == srv.users["e1boss"]
    assert h[0]["changes"] == [{"field": "address", "from": "1 Harbour Road",
                                "to": "2 Harbour Road"}]
    first = {c["field"] for c in h[1]["changes"]}
    assert {"name", "credit_code", "hazard_sources", "boundary"} <= first
    assert h[1]["comment"] == "ok" and h[1]["record"]["address"] == "1 Harbour Road"
    r = srv.http("GET", "/api/v1/enterprises/e1", token=corp)
    assert r.json["draft"] is None and r.json["enterprise"]["address"] == "2 Harbour Road"
    r = srv.http("GET", "/api/v1/enterprises/e1/hazard-sources", token=corp)
    assert [s["id"] for s in r.json["hazard_sources"]] == ["tanks"]
    r = srv.http("GET", "/api/v1/enterprises/e1/hazard-sources/tanks", token=corp)
    assert r.json["approved"]["r"] == 51 and r.json["draft"] is None
    assert_error(srv.http("GET", "/api/v1/enterprises/e1/hazard-sources/nope", token=corp),
                 404, "not_found")

    # the list: filters and paging
    insp = srv.token("insp")
    r = srv.http("GET", "/api/v1/enterprises", token=insp)
    assert r.status == 200 and [e["id"] for e in r.json["enterprises"]] == ["e1", "e2"]
    assert r.json["total"] == 2
    r = srv.http("GET", "/api/v1/enterprises?status=approved&hazard_level=2", token=insp)
    assert [e["id"] for e in r.json["enterprises"]] == ["e1"]
    assert r.json["enterprises"][0]["park"] == "Nansha Chemical Park"
    r = srv.http("GET", "/api/v1/enterprises?park=Nansha%20Chemical%20Park", token=insp)
    assert [e["id"] for e in r.json["enterprises"]] == ["e1"]
    r = srv.http("GET", "/api/v1/enterprises?status=none&key=true", token=insp)
    assert [e["id"] for e in r.json["enterprises"]] == ["e2"]
    r = srv.http("GET", "/api/v1/enterprises?division=440113", token=insp)
    assert [e["id"] for e in r.json["enterprises"]] == ["e2"]
    r = srv.http("GET", "/api/v1/enterprises?limit=1&offset=1", token=insp)
    assert [e["id"] for e in r.json["enterprises"]] == ["e2"] and r.json["total"] == 2
    assert_error(srv.http("GET", "/api/v1/enterprises?limit=0", token=insp), 400, "bad_request")
    assert_error(srv.http("GET", "/api/v1/enterprises?status=odd", token=insp), 400,
                 "bad_request")
    r = srv.http("GET", "/api/v1/enterprises", token=srv.token("e2boss"))
    assert [e["id"] for e in r.json["enterprises"]] == ["e2"]
    # the approved record still serves the rest of the system
    assert "Plant One Chemicals" in srv.ctl("enterprise", "list", check=True).stdout


def test_jurisdiction_on_every_route(server):
    srv = start(server)
    other, e2boss, dist = srv.token("other"), srv.token("e2boss"), srv.token("dist")
    driver, corp = srv.token("driver"), srv.token("e1boss")
    assert srv.http("PUT", "/api/v1/enterprises/e1", token=corp, body=RECORD).status == 200
    assert srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}").status == 200
    routes = [
        ("GET", "/api/v1/enterprises/e1", None),
        ("PUT", "/api/v1/enterprises/e1", {"address": "x"}),
        ("POST", "/api/v1/enterprises/e1/submit", {}),
        ("POST", "/api/v1/enterprises/e1/review", {"decision": "approve"}),
        ("GET", "/api/v1/enterprises/e1/history", None),
        ("GET", "/api/v1/enterprises/e1/hazard-sources", None),
        ("GET", "/api/v1/enterprises/e1/hazard-sources/tanks", None),
        ("PUT", "/api/v1/enterprises/e1/hazard-sources/tanks", TANKS),
        ("DELETE", "/api/v1/enterprises/e1/hazard-sources/tanks", None),
    ]
    for method, path, body in routes:
        for tok in (other, e2boss, driver):
            assert_error(srv.http(method, path, token=tok, body=body), 403, "forbidden")
        assert_error(srv.http(method, path, body=body), 401, "unauthorized")
        missing = path.replace("/e1", "/nope")
        assert_error(srv.http(method, missing, token=dist, body=body), 404, "not_found")
    # a regulator in reach reviews but does not edit; the plant edits but does not review
    assert_error(srv.http("PUT", "/api/v1/enterprises/e1", token=dist, body={"park": "x"}), 403,
                 "forbidden")
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/submit", token=dist, raw="{}"), 403,
                 "forbidden")
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/review", token=corp,
                          body={"decision": "approve"}), 403, "forbidden")
    # a district regulator cannot approve a move into another district
    r = srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                 body={"decision": "reject", "comment": "move it"})
    assert r.status == 200
    assert srv.http("PUT", "/api/v1/enterprises/e1", token=corp,
                    body={"division": "440113"}).status == 200
    assert srv.http("POST", "/api/v1/enterprises/e1/submit", token=corp, raw="{}").status == 200
    assert_error(srv.http("POST", "/api/v1/enterprises/e1/review", token=dist,
                          body={"decision": "approve"}), 403, "forbidden")
    assert srv.http("POST", "/api/v1/enterprises/e1/review", token=srv.token("insp"),
                    body={"decision": "approve"}).status == 200
    # lists
    assert_error(srv.http("GET", "/api/v1/enterprises?division=4401", token=other), 403,
                 "forbidden")
    assert_error(srv.http("GET", "/api/v1/enterprises", token=driver), 403, "forbidden")
    r = srv.http("GET", "/api/v1/enterprises", token=other)
    assert [e["id"] for e in r.json["enterprises"]] == ["far"]
    r = srv.http("GET", "/api/v1/enterprises", token=dist)  # e1 moved to 440113
    assert r.json["enterprises"] == []
    # import is the regulators'
    assert_error(srv.http("POST", "/api/v1/enterprises/import", token=corp,
                          body={"format": "json", "enterprises": []}), 403, "forbidden")


CSV_HEADER = ("id,name,credit_code,division,park,address,lon,lat,principal_name,"
              "principal_phone,safety_managers,licence,processes,key\n")


def csv_row(eid, code, division, lon="113.3", phone="13900000000"):
    return (f'{eid},"Plant {eid}, Ltd",{code},{division},,1 Road,{lon},23.1,Zhang San,'
            f'{phone},"Li Si:13900000001;Wang Wu:13900000002",use,氯化工艺,true\n')


def test_import_with_bad_rows(server):
    srv = start(server)
    insp = srv.token("insp")
    good = credit_code("91440106MA5AAAAA1")
    data = (CSV_HEADER
            + csv_row("n1", good, "440106")
            + csv_row("n2", good[:17] + ("0" if good[17] != "0" else "1"), "440106")
            + csv_row("n3", credit_code("91440305MA5AAAAA2"), "440305")
            + csv_row("n4", credit_code("91440106MA5AAAAA3"), "440106", lon="2.35")
            + csv_row("n5", credit_code("91440106MA5AAAAA4"), "440106", phone="")
            + "n6,short row\n"
            + csv_row("e2", credit_code("91440113MA5AAAAA5"), "440113"))
    r = srv.http("POST", "/api/v1/enterprises/import", token=insp,
                 body={"format": "csv", "data": data, "dry_run": True})
    assert r.status == 200, r
    assert (r.json["total"], r.json["accepted"], r.json["rejected"]) == (7, 2, 5)
    assert srv.http("GET", "/api/v1/enterprises/n1", token=insp).status == 404  # dry run
    r = srv.http("POST", "/api/v1/enterprises/import", token=insp,
                 body={"format": "csv", "data": data})
    rows = {row["id"]: row for row in r.json["rows"]}
    assert rows["n1"]["ok"] and rows["n1"]["action"] == "created"
    assert rows["e2"]["ok"] and rows["e2"]["action"] == "updated"
    assert "check character" in rows["n2"]["error"]
    assert rows["n3"]["error"] == "outside your jurisdiction"
    assert "China" in rows["n4"]["error"]
    assert "principal" in rows["n5"]["error"]
    assert "number of cells" in rows["n6"]["error"]
    assert [row["row"] for row in r.json["rows"]] == [1, 2, 3, 4, 5, 6, 7]
    e = srv.http("GET", "/api/v1/enterprises/n1", token=insp).json["enterprise"]
    assert e["name"] == "Plant n1, Ltd" and e["key"] is True and e["version"] == 1
    assert e["safety_managers"][1] == {"name": "Wang Wu", "phone": "13900000002"}
    assert e["processes"] == ["氯化工艺"] and e["review_status"] == "approved"
    h = srv.http("GET", "/api/v1/enterprises/n1/history", token=insp).json["history"]
    assert h[0]["source"] == "import" and h[0]["by"] == srv.users["insp"]
    # the same credit code on another enterprise is a conflict
    r = srv.http("POST", "/api/v1/enterprises/import", token=insp,
                 body={"format": "csv", "data": CSV_HEADER + csv_row("n7", good, "440106")})
    assert r.json["rows"][0]["error"] == "the credit code belongs to another enterprise"
    # rows of one file are read before any is written: an id or a credit
    # code on an earlier row is refused on the later one
    c8, c9 = credit_code("91440106MA5AAAAA8"), credit_code("91440106MA5AAAAA9")
    r = srv.http("POST", "/api/v1/enterprises/import", token=insp,
                 body={"format": "csv", "data": CSV_HEADER + csv_row("n8", c8, "440106")
                       + csv_row("n8", c9, "440106") + csv_row("n9", c8, "440106")})
    assert [(x["ok"], x.get("error")) for x in r.json["rows"]] == [
        (True, None), (False, "the id is on an earlier row"),
        (False, "the credit code is on an earlier row")], r
    assert srv.http("GET", "/api/v1/enterprises/n8", token=insp).json["enterprise"][
        "credit_code"] == c8
    assert srv.http("GET", "/api/v1/enterprises/n9", token=insp).status == 404
    assert_error(srv.http("POST", "/api/v1/enterprises/import", token=insp,
                          body={"format": "csv", "data": "id,colour\nx,red\n"}), 400,
                 "bad_request")
    assert_error(srv.http("POST", "/api/v1/enterprises/import", token=insp,
                          body={"format": "xml"}), 400, "bad_request")

    # yjtctl, from a JSON file, while the server runs
    rec = dict(RECORD, credit_code=credit_code("91440305MA5BBBBB1"), division="440305",
               name="Far Plant Co")
    doc = {"enterprises": [dict(rec, id="far"), {"id": "bad one", "name": "x"},
                           dict(rec, id="j2", credit_code="123")]}
    path = srv.data_dir / "import.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    cp = srv.ctl("import", "enterprises", "--file", path)
    assert cp.returncode == 1, cp.stderr
    rep = json.loads(cp.stdout)
    assert (rep["accepted"], rep["rejected"]) == (1, 2)
    assert rep["rows"][0]["action"] == "updated"
    assert "id must be" in rep["rows"][1]["error"]
    assert "credit_code" in rep["rows"][2]["error"]
    r = srv.http("GET", "/api/v1/enterprises/far", token=srv.token("other"))
    assert r.status == 200 and r.json["enterprise"]["name"] == "Far Plant Co"
    cp = srv.ctl("import", "enterprises", "--file", path, "--format", "yaml")
    assert cp.returncode == 2
