"""Every change records its actor: a transfer posted with API key A says `api_key:<A>` in its
audit leaf (decoded with audit/leaf.py from its receipt) and on its row (transfers.actor_ref,
into `actors`), whichever door it came through (the coalescer, the batch route, a post of a
pending transfer), even when the coalescer commits several keys' transfers in one batch; an
expiry says `system:expiry`; ledgers, accounts, assets and webhook endpoints carry
`created_by`. The ledger's and the audit log's verifiers still pass."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa

from strongroom.audit import leaf
from strongroom.core import ids
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.model import NewTransfer
from strongroom.ledger.service import EXPIRY_ACTOR
from tests.e2e.http_support import Api, Tenant, running, seed_tenant


def _key(api: Api, tenant: Tenant, scopes: list[str]) -> tuple[str, str]:
    key, secret = api.app.state.tenancy.create_api_key(tenant.name, scopes)
    return key.actor, secret


def _leaf_actors(api: Api, tenant: Tenant, transfer_id: str) -> list[str | None]:
    """The actor of each leaf of the transfer, from its receipt."""
    api.ok("POST", "/v1/audit/checkpoints", key=tenant.admin)
    receipt = api.ok("GET", f"/v1/transfers/{transfer_id}/receipt", key=tenant.read)
    return [leaf.parse(base64.b64decode(x["leaf"]))["actor"] for x in receipt["leaves"]]


def _row_actors(api: Api, transfer_ids: list[str]) -> dict[str, str | None]:
    with UnitOfWork(api.app.state.engine, write=False) as uow:
        return store.transfer_actors(uow, transfer_ids)


def _created_by(api: Api, table: str, column: str, value: str) -> Any:
    with api.app.state.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT created_by FROM {table} WHERE {column} = :v"),
            {"v": value},
        ).scalar_one()


def _transfer(tenant: Tenant, amount: int, **more: Any) -> dict[str, Any]:
    return {
        "ledger_id": tenant.ledger,
        "debit_account_id": tenant.bank,
        "credit_account_id": tenant.alice,
        "amount": amount,
        **more,
    }


def test_each_transfer_records_the_key_that_asked(db_url: str) -> None:
    with running(db_url, dispatcher=False) as api:
        tenant = seed_tenant(api, "acme")
        actor_a, key_a = _key(api, tenant, ["ledger:write"])
        actor_b, key_b = _key(api, tenant, ["ledger:write"])

        one = api.ok("POST", "/v1/transfers", 201, key=key_a, json=_transfer(tenant, 5))["id"]
        assert _leaf_actors(api, tenant, one) == [actor_a]
        assert _row_actors(api, [one]) == {one: actor_a}

        # Concurrent requests of two keys: the coalescer may commit them in one batch, and
        # each transfer keeps its own key.
        calls = [
            api.arequest("POST", "/v1/transfers", key=k, json=_transfer(tenant, 1 + i))
            for i, k in enumerate([key_a, key_b] * 20)
        ]
        answers = api.gather(calls)
        assert all(r.status_code == 201 for r in answers)
        expected = {
            r.json()["id"]: actor for r, actor in zip(answers, [actor_a, actor_b] * 20, strict=True)
        }
        assert _row_actors(api, list(expected)) == expected
        for transfer_id in list(expected)[:4]:
            assert _leaf_actors(api, tenant, transfer_id) == [expected[transfer_id]]

        # The batch route, and the post of a pending transfer.
        batch = api.ok(
            "POST",
            "/v1/transfers/batch",
            key=key_b,
            json={"transfers": [_transfer(tenant, 2), _transfer(tenant, 3)]},
        )
        batch_ids = [r["transfer_id"] for r in batch["results"]]
        assert _row_actors(api, batch_ids) == dict.fromkeys(batch_ids, actor_b)
        assert _leaf_actors(api, tenant, batch_ids[1]) == [actor_b]
        posted = api.ok("POST", f"/v1/transfers/{tenant.pending}/post", 201, key=key_a, json={})
        assert _row_actors(api, [posted["id"]]) == {posted["id"]: actor_a}
        assert _leaf_actors(api, tenant, posted["id"]) == [actor_a]

        assert not api.app.state.ledger.verify().problems
        assert not api.app.state.audit.verify().problems


def test_an_expiry_is_the_systems_and_rows_name_their_creator(sqlite_url: str) -> None:
    with running(sqlite_url, dispatcher=False) as api:
        tenant = seed_tenant(api, "acme")
        actor, key = _key(api, tenant, ["admin"])
        held = api.ok(
            "POST", "/v1/transfers", 201, key=key, json=_transfer(tenant, 7, pending=True)
        )["id"]
        with UnitOfWork(api.app.state.engine) as uow:
            uow.cursor().execute(
                "UPDATE transfers SET expires_at = 1 WHERE id = ?", (held,)
            )  # due now
            uow.commit()
        assert api.app.state.ledger.expire_due() == 1
        assert _leaf_actors(api, tenant, held) == [actor, EXPIRY_ACTOR]
        assert _row_actors(api, [held]) == {held: actor}  # the row keeps its creator

        ledger = api.ok("POST", "/v1/ledgers", 201, key=key, json={"name": "more"})["id"]
        assert _created_by(api, "ledgers", "id", ledger) == actor
        account = api.ok(
            "POST",
            "/v1/accounts",
            201,
            key=key,
            json={"ledger_id": ledger, "asset": "USD", "normal_balance": "debit"},
        )["id"]
        assert _created_by(api, "accounts", "id", account) == actor
        api.ok("POST", "/v1/assets", 201, key=key, json={"code": "POINTS", "scale": 0})
        assert _created_by(api, "assets", "code", "POINTS") == actor
        endpoint = api.ok(
            "POST",
            "/v1/webhook_endpoints",
            201,
            key=key,
            json={"url": "https://hooks.example.com/x"},
        )["id"]
        assert _created_by(api, "webhook_endpoints", "id", endpoint) == actor


def test_a_batch_of_several_actors_keeps_each_ones(db_url: str) -> None:
    """What the coalescer does with transfers of several keys, made certain: one batch, one
    transaction, each row and leaf with its own actor (None: not told, null on both)."""
    with running(db_url, dispatcher=False) as api:
        tenant = seed_tenant(api, "acme")
        svc = api.app.state.ledger
        batch = [
            NewTransfer(ids.new_id("tr"), tenant.ledger, tenant.bank, tenant.alice, 1 + i)
            for i in range(4)
        ]
        actors = ["api_key:key_a", "api_key:key_b", None, "api_key:key_a"]
        outcomes = svc.post_transfers(batch, actors=actors)
        assert all(o.result.ok for o in outcomes)
        expected = {t.id: a for t, a in zip(batch, actors, strict=True)}
        assert _row_actors(api, list(expected)) == expected
        for t in batch:
            assert _leaf_actors(api, tenant, t.id) == [expected[t.id]]
        assert not svc.verify().problems
        assert not api.app.state.audit.verify().problems
