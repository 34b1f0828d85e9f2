"""KYC over HTTP with STRONGROOM_KYC_LIMITS on: a customer's status and tier set and read
(compliance scopes), its payments refused until verified and past its tier's caps (single and
batch doors), whether or not the transfer says it is a payment (the payer is the debit
account's owner; a payment naming another customer is refused), and an account frozen and
unfrozen, each change an event."""

from __future__ import annotations

from tests.e2e.http_support import problem_code, running, seed_tenant


def test_kyc_caps_and_freezing_over_http(sqlite_url: str) -> None:
    with running(sqlite_url, kyc_limits=True) as api:
        a = seed_tenant(api, "acme")
        cus = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Ada"})["id"]
        payer = api.ok(
            "POST",
            "/v1/accounts",
            201,
            key=a.admin,
            json={
                "ledger_id": a.ledger,
                "asset": "USD",
                "normal_balance": "credit",
                "customer_id": cus,
            },
        )["id"]

        def pay(amount: int) -> dict[str, object]:
            return {
                "ledger_id": a.ledger,
                "debit_account_id": payer,
                "credit_account_id": a.bank,
                "amount": amount,
                "payment": {"customer_id": cus},
            }

        refused = api.post("/v1/transfers", key=a.write, json=pay(10))
        assert (refused.status_code, problem_code(refused)) == (422, "kyc_unverified")
        assert api.ok("GET", f"/v1/customers/{cus}/kyc", key=a.admin)["status"] == "unverified"
        # Setting it takes compliance:write; a ledger key may not.
        path = f"/v1/customers/{cus}/kyc"
        denied = api.request("PUT", path, key=a.write, json={"status": "verified"})
        assert (denied.status_code, problem_code(denied)) == (403, "insufficient_scope")
        bad = api.request("PUT", path, key=a.admin, json={"status": "verified", "tier": "x"})
        assert (bad.status_code, problem_code(bad)) == (400, "invalid_kyc_tier")
        state = api.ok("PUT", path, key=a.admin, json={"status": "verified", "tier": "basic"})
        assert (state["status"], state["tier"], state["object"]) == (
            "verified",
            "basic",
            "customer_kyc",
        )

        over = api.post("/v1/transfers", key=a.write, json=pay(50_001))
        assert (over.status_code, problem_code(over)) == (422, "kyc_limit_exceeded")
        assert "window per_transfer, limit 50000 USD" in over.json()["detail"]
        assert api.ok("POST", "/v1/transfers", 201, key=a.write, json=pay(50_000))
        batch = api.ok(
            "POST",
            "/v1/transfers/batch",
            key=a.write,
            json={"transfers": [pay(40_000), pay(20_000), pay(10_000)]},
        )["results"]
        # 24 h cap 100,000: 50,000 + 40,000 pass, 20,000 more would cross it, 10,000 fits.
        assert [(r["status"], r["code"]) for r in batch] == [
            ("created", "created"),
            ("refused", "kyc_limit_exceeded"),
            ("created", "created"),
        ]

        # The payer is the debit account's owner: a transfer without `payment` is capped as
        # Ada's (her day has 100,000 - 90,000 - 10,000 = 0 left), and one naming another
        # customer is refused, nothing written.
        plain = {k: v for k, v in pay(1).items() if k != "payment"}
        capped = api.post("/v1/transfers", key=a.write, json=plain)
        assert (capped.status_code, problem_code(capped)) == (422, "kyc_limit_exceeded")
        capped = api.post("/v1/transfers/batch", key=a.write, json={"transfers": [plain]})
        assert capped.json()["results"][0]["code"] == "kyc_limit_exceeded"
        bob = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Bob"})["id"]
        api.ok("PUT", f"/v1/customers/{bob}/kyc", key=a.admin, json={"status": "verified"})
        events_before = len(api.ok("GET", "/v1/events", key=a.admin, params={"limit": 100})["data"])
        as_bob = {**pay(1), "payment": {"customer_id": bob}}
        lie = api.post("/v1/transfers", key=a.write, json=as_bob)
        assert (lie.status_code, problem_code(lie)) == (422, "payment_customer_mismatch")
        assert lie.json()["param"] == "payment.customer_id"
        lie = api.post("/v1/transfers/batch", key=a.write, json={"transfers": [pay(1), as_bob]})
        assert (lie.status_code, problem_code(lie)) == (422, "payment_customer_mismatch")
        assert lie.json()["param"] == "transfers[1].payment.customer_id"
        events = api.ok("GET", "/v1/events", key=a.admin, params={"limit": 100})["data"]
        assert len(events) == events_before
        listed = api.ok("GET", "/v1/transfers", key=a.read, params={"ledger_id": a.ledger})
        assert all(t["debit_account_id"] != payer or t["amount"] != 1 for t in listed["data"])

        frozen = api.ok("POST", f"/v1/accounts/{payer}/freeze", key=a.admin)
        assert frozen["frozen"] is True
        denied = api.post(f"/v1/accounts/{payer}/unfreeze", key=a.write)
        assert (denied.status_code, problem_code(denied)) == (403, "insufficient_scope")
        move = {"ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": payer}
        blocked = api.post("/v1/transfers", key=a.write, json={**move, "amount": 1})
        assert (blocked.status_code, problem_code(blocked)) == (422, "account_frozen")
        assert api.ok("POST", f"/v1/accounts/{payer}/unfreeze", key=a.admin)["frozen"] is False
        assert api.ok("POST", "/v1/transfers", 201, key=a.write, json={**move, "amount": 1})

        events = api.ok("GET", "/v1/events", key=a.admin, params={"limit": 100})["data"]
        types = [e["type"] for e in events]
        assert {"customer.kyc_updated", "account.frozen", "account.unfrozen"} <= set(types)
        assert "Ada" not in str(events)
        leaves = api.ok("GET", "/v1/audit/leaves", key=a.admin, params={"limit": 100})
        assert leaves["data"]


def test_a_pending_transfer_does_not_post_once_its_payer_is_rejected(sqlite_url: str) -> None:
    """A two-phase transfer created while the payer was verified: once the customer's KYC is
    `rejected`, posting it is refused (422 kyc_unverified, still pending); voiding it works."""
    with running(sqlite_url, kyc_limits=True) as api:
        a = seed_tenant(api, "acme")
        cus = api.ok("POST", "/v1/customers", 201, key=a.admin, json={"name": "Ada"})["id"]
        payer = api.ok(
            "POST",
            "/v1/accounts",
            201,
            key=a.admin,
            json={
                "ledger_id": a.ledger,
                "asset": "USD",
                "normal_balance": "credit",
                "customer_id": cus,
            },
        )["id"]
        path = f"/v1/customers/{cus}/kyc"
        api.ok("PUT", path, key=a.admin, json={"status": "verified", "tier": "basic"})
        hold = {
            "ledger_id": a.ledger,
            "debit_account_id": payer,
            "credit_account_id": a.bank,
            "amount": 100,
            "pending": True,
        }
        first = api.ok("POST", "/v1/transfers", 201, key=a.write, json=hold)
        second = api.ok("POST", "/v1/transfers", 201, key=a.write, json=hold)
        api.ok("PUT", path, key=a.admin, json={"status": "rejected"})
        refused = api.post(f"/v1/transfers/{first['id']}/post", key=a.write, json={})
        assert (refused.status_code, problem_code(refused)) == (422, "kyc_unverified")
        assert api.ok("GET", f"/v1/transfers/{first['id']}", key=a.read)["status"] == "pending"
        api.ok("POST", f"/v1/transfers/{second['id']}/void", 201, key=a.write)
        assert api.ok("GET", f"/v1/transfers/{second['id']}", key=a.read)["status"] == "voided"
        api.ok("PUT", path, key=a.admin, json={"status": "verified", "tier": "basic"})
        api.ok("POST", f"/v1/transfers/{first['id']}/post", 201, key=a.write, json={})
