"""Campaign routes over real HTTP, compared with the database: the semantics of `campaign apply`."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tests.api.conftest import auth, campaign_body


def arms_in_db(engine: sa.Engine, campaign_id: int) -> dict[str, tuple[int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select arm_key, arm_id, active from ops.arms where campaign_id = :c"), {"c": campaign_id}
        )
        return {r.arm_key: (r.arm_id, r.active) for r in rows}


def snapshot(engine: sa.Engine) -> tuple:
    with engine.connect() as conn:
        campaigns = conn.execute(sa.text("select * from ops.campaigns order by campaign_id")).all()
        arms = conn.execute(sa.text("select * from ops.arms order by arm_id")).all()
    return campaigns, arms


@pytest.fixture
def admin(server, keys, clean_engine):
    return httpx.Client(base_url=server.url, headers=auth(keys["admin"]))


def test_create_update_retire_reactivate_keeps_arm_ids(admin, clean_engine) -> None:
    body = campaign_body()
    created = admin.post("/campaigns", json=body)
    assert created.status_code == 201, created.text
    out = created.json()
    cid = out["campaign_id"]
    # 1 offer x 2 discounts x 2 channels x 2 times = 8 arms, all new.
    assert out | {"campaign_id": 0} == {
        "campaign_id": 0,
        "name": "card-cashback",
        "created": True,
        "changed": True,
        "arms_active": 8,
        "arms_added": 8,
        "arms_retired": 0,
        "arms_reactivated": 0,
    }
    first = arms_in_db(clean_engine, cid)
    assert len(first) == 8 and all(active for _, active in first.values())

    same = admin.put(f"/campaigns/{cid}", json=body).json()
    assert (same["created"], same["changed"], same["arms_added"]) == (False, False, 0)

    # Removing the sms channel retires its 4 arms; their ids and history stay.
    body["parameters"] = {**body["parameters"], "channel": ["email"]}
    body["channel_costs"] = {"email": 0.01}
    retired = admin.put(f"/campaigns/{cid}", json=body).json()
    assert (retired["changed"], retired["arms_active"], retired["arms_retired"]) == (True, 4, 4)
    second = arms_in_db(clean_engine, cid)
    assert {k: i for k, (i, _) in second.items()} == {k: i for k, (i, _) in first.items()}
    assert sorted(k for k, (_, a) in second.items() if not a) == sorted(
        k for k in first if "channel=sms" in k
    )

    shown = admin.get(f"/campaigns/{cid}").json()
    assert shown["definition"]["parameters"]["channel"] == ["email"]
    assert {a["arm_key"]: (a["arm_id"], a["active"]) for a in shown["arms"]} == second
    assert all((a["retired_at"] is None) == a["active"] for a in shown["arms"])

    # Adding sms back reactivates the same 4 ids.
    back = admin.put(f"/campaigns/{cid}", json=campaign_body()).json()
    assert (back["arms_reactivated"], back["arms_added"], back["arms_active"]) == (4, 0, 8)
    assert arms_in_db(clean_engine, cid) == first

    listed = admin.get("/campaigns").json()
    assert [(c["campaign_id"], c["name"], c["arms_active"], c["arms_retired"]) for c in listed] == [
        (cid, "card-cashback", 8, 0)
    ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"parameters": {"channel": ["email", "fax"]}}, "parameters", "unknown value 'fax'"),
        ({"holdout_share": 0.9}, "holdout_share", "less than or equal to 0.5"),
        ({"start_date": "2026-13-01"}, "start_date", "month"),
        ({"policy": {"name": "no-such-policy"}}, "policy", "no-such-policy"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"name": "Bad Name!"}, "name", "should match pattern"),
        ({"end_date": "2020-01-01"}, "body: end_date 2020-01-01 is before start_date", ""),
    ],
)
def test_bad_bodies_are_422_naming_the_field_and_change_nothing(admin, clean_engine, change, field, message):
    cid = admin.post("/campaigns", json=campaign_body()).json()["campaign_id"]
    before = snapshot(clean_engine)
    body = campaign_body() | change
    for response in (
        admin.post("/campaigns", json=body | {"name": "other"} if "name" not in change else body),
        admin.put(f"/campaigns/{cid}", json=body),
    ):
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"{field}") and message in detail, detail
    assert snapshot(clean_engine) == before


def test_not_json_and_wrong_types_are_422(admin, clean_engine) -> None:
    r = admin.post("/campaigns", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON decode error" in r.json()["detail"]
    r = admin.post("/campaigns", json=["a", "list"])
    assert r.status_code == 422, r.text
    r = admin.get("/campaigns/abc")
    assert r.status_code == 422 and r.json()["detail"].startswith("path campaign_id:")
    r = admin.get(f"/campaigns/{2**40}")
    assert r.status_code == 422 and r.json()["detail"].startswith("path campaign_id:")


def test_unknown_id_is_404_naming_it(admin, clean_engine) -> None:
    for response in (admin.get("/campaigns/987654"), admin.put("/campaigns/987654", json=campaign_body())):
        assert response.status_code == 404
        assert response.json() == {"detail": "unknown campaign id 987654"}
    assert snapshot(clean_engine) == ([], [])


def test_post_of_an_existing_name_and_put_renaming_are_409(admin, clean_engine) -> None:
    cid = admin.post("/campaigns", json=campaign_body()).json()["campaign_id"]
    before = snapshot(clean_engine)
    dup = admin.post("/campaigns", json=campaign_body())
    assert dup.status_code == 409
    assert dup.json()["detail"] == f"name: campaign 'card-cashback' exists (id {cid}); PUT /campaigns/{cid}"
    renamed = admin.put(f"/campaigns/{cid}", json=campaign_body("card-renamed"))
    assert renamed.status_code == 409
    assert renamed.json()["detail"] == (
        f"name: campaign {cid} is 'card-cashback', the body names 'card-renamed'; names cannot change"
    )
    assert snapshot(clean_engine) == before


def test_a_stored_definition_that_no_longer_validates_is_a_message_not_a_500(admin, clean_engine) -> None:
    cid = admin.post("/campaigns", json=campaign_body()).json()["campaign_id"]
    with clean_engine.begin() as conn:  # edited by hand in the database
        conn.execute(
            sa.text(
                "update ops.campaigns set definition = definition || '{\"holdout_share\": 0.9}' "
                "where campaign_id = :c"
            ),
            {"c": cid},
        )
    r = admin.get(f"/campaigns/{cid}")
    assert r.status_code == 422
    assert r.json()["detail"].startswith(
        f"stored campaign 'card-cashback' (id {cid}) no longer validates: holdout_share:"
    )
