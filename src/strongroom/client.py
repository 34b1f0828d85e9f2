"""A typed Python client for Strongroom's HTTP API, on httpx.

    with Client("http://127.0.0.1:8000", api_key="sk_...") as sr:
        ledger = sr.create_ledger("main")
        account = sr.create_account(ledger.id, "USD", "credit")

Every POST carries an Idempotency-Key (yours, or a fresh one per call), so the client retries
a POST whose answer was lost (a connection error or a 5xx) without posting twice. Errors are
raised as ApiError with the problem's stable `code`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from strongroom.audit.schemas import StatementOut
from strongroom.events.schemas import (
    AttemptList,
    EndpointDeleted,
    EndpointList,
    EndpointOut,
)
from strongroom.ledger.schemas import (
    AccountList,
    AccountOut,
    AssetOut,
    BalanceAtOut,
    BatchOut,
    EntryList,
    LedgerList,
    LedgerOut,
    TransferList,
    TransferOut,
)

M = TypeVar("M", bound=BaseModel)

RETRIES_MAX = 3


class ApiError(Exception):
    """An RFC 9457 problem answered by the server."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.code = str(problem.get("code", "unknown"))
        self.detail = str(problem.get("detail", ""))
        self.param = problem.get("param")
        self.request_id = problem.get("request_id")
        super().__init__(f"{status} {self.code}: {self.detail}")


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> M:
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or secrets.token_urlsafe(18)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(RETRIES_MAX + 1):
            try:
                response = self._http.request(
                    method, path, json=json, params=clean, headers=headers
                )
            except httpx.TransportError:
                if attempt == RETRIES_MAX:
                    raise
                time.sleep(0.05 * 2**attempt)
                continue
            if response.status_code >= 500 and attempt < RETRIES_MAX:
                time.sleep(0.05 * 2**attempt)
                continue
            if response.status_code >= 400:
                try:
                    problem = response.json()
                except ValueError:
                    problem = {"code": "http_error", "detail": response.text[:200]}
                raise ApiError(response.status_code, problem)
            return model.model_validate(response.json())
        raise AssertionError("unreachable")

    # -- ledgers and assets ----------------------------------------------------------------

    def create_ledger(
        self,
        name: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> LedgerOut:
        body = {"name": name, "metadata": dict(metadata) if metadata else None}
        return self._request(
            "POST", "/v1/ledgers", LedgerOut, json=body, idempotency_key=idempotency_key
        )

    def list_ledgers(
        self, *, limit: int | None = None, starting_after: str | None = None
    ) -> LedgerList:
        return self._request(
            "GET",
            "/v1/ledgers",
            LedgerList,
            params={"limit": limit, "starting_after": starting_after},
        )

    def get_ledger(self, ledger_id: str) -> LedgerOut:
        return self._request("GET", f"/v1/ledgers/{ledger_id}", LedgerOut)

    def create_asset(self, code: str, scale: int) -> AssetOut:
        return self._request("POST", "/v1/assets", AssetOut, json={"code": code, "scale": scale})

    # -- accounts --------------------------------------------------------------------------

    def create_account(
        self,
        ledger_id: str,
        asset: str,
        normal_balance: str,
        *,
        name: str | None = None,
        flags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AccountOut:
        body = {
            "ledger_id": ledger_id,
            "asset": asset,
            "normal_balance": normal_balance,
            "name": name,
            "flags": list(flags),
            "metadata": dict(metadata) if metadata else None,
        }
        return self._request(
            "POST", "/v1/accounts", AccountOut, json=body, idempotency_key=idempotency_key
        )

    def list_accounts(
        self, ledger_id: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> AccountList:
        params = {"ledger_id": ledger_id, "limit": limit, "starting_after": starting_after}
        return self._request("GET", "/v1/accounts", AccountList, params=params)

    def get_account(self, account_id: str) -> AccountOut:
        return self._request("GET", f"/v1/accounts/{account_id}", AccountOut)

    def get_balance(
        self, account_id: str, *, as_of: str | None = None, version: int | None = None
    ) -> BalanceAtOut:
        return self._request(
            "GET",
            f"/v1/accounts/{account_id}/balance",
            BalanceAtOut,
            params={"as_of": as_of, "version": version},
        )

    def list_entries(
        self, account_id: str, *, limit: int | None = None, starting_after: int | None = None
    ) -> EntryList:
        return self._request(
            "GET",
            f"/v1/accounts/{account_id}/entries",
            EntryList,
            params={"limit": limit, "starting_after": starting_after},
        )

    # -- transfers -------------------------------------------------------------------------

    def create_transfer(
        self,
        ledger_id: str,
        *,
        debit_account_id: str | None = None,
        credit_account_id: str | None = None,
        amount: int | None = None,
        entries: Sequence[Mapping[str, Any]] | None = None,
        pending: bool = False,
        timeout_s: int = 0,
        effective_at: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TransferOut:
        body: dict[str, Any] = {"ledger_id": ledger_id, "pending": pending, "timeout_s": timeout_s}
        if entries is not None:
            body["entries"] = [dict(e) for e in entries]
        else:
            body.update(
                debit_account_id=debit_account_id,
                credit_account_id=credit_account_id,
                amount=amount,
            )
        if effective_at is not None:
            body["effective_at"] = effective_at
        if metadata:
            body["metadata"] = dict(metadata)
        return self._request(
            "POST", "/v1/transfers", TransferOut, json=body, idempotency_key=idempotency_key
        )

    def _resolve(
        self, transfer_id: str, action: str, amount: int | None, idempotency_key: str | None
    ) -> TransferOut:
        body = {"amount": amount} if amount is not None else None
        return self._request(
            "POST",
            f"/v1/transfers/{transfer_id}/{action}",
            TransferOut,
            json=body,
            idempotency_key=idempotency_key,
        )

    def post_transfer(
        self, transfer_id: str, amount: int | None = None, *, idempotency_key: str | None = None
    ) -> TransferOut:
        return self._resolve(transfer_id, "post", amount, idempotency_key)

    def void_transfer(self, transfer_id: str, *, idempotency_key: str | None = None) -> TransferOut:
        return self._resolve(transfer_id, "void", None, idempotency_key)

    def reverse_transfer(
        self, transfer_id: str, amount: int | None = None, *, idempotency_key: str | None = None
    ) -> TransferOut:
        return self._resolve(transfer_id, "reverse", amount, idempotency_key)

    def create_batch(
        self,
        transfers: Sequence[Mapping[str, Any]],
        *,
        atomic: bool = False,
        idempotency_key: str | None = None,
    ) -> BatchOut:
        body = {"transfers": [dict(t) for t in transfers], "atomic": atomic}
        return self._request(
            "POST", "/v1/transfers/batch", BatchOut, json=body, idempotency_key=idempotency_key
        )

    def list_transfers(
        self,
        *,
        ledger_id: str | None = None,
        account_id: str | None = None,
        status: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        metadata: Mapping[str, str] | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        cursor: str | None = None,
    ) -> TransferList:
        """A page; with a filter it may hold fewer than `limit` transfers while has_more is
        true (each request examines a bounded number): pass its next_cursor as `cursor`."""
        params: dict[str, Any] = {
            "ledger_id": ledger_id,
            "account_id": account_id,
            "status": status,
            "created_after": created_after,
            "created_before": created_before,
            "limit": limit,
            "starting_after": starting_after,
            "cursor": cursor,
        }
        for key, value in (metadata or {}).items():
            params[f"metadata[{key}]"] = value
        return self._request("GET", "/v1/transfers", TransferList, params=params)

    def get_transfer(self, transfer_id: str) -> TransferOut:
        return self._request("GET", f"/v1/transfers/{transfer_id}", TransferOut)

    # -- audit -----------------------------------------------------------------------------

    def statement(
        self,
        account_id: str,
        from_: str,
        to: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> StatementOut:
        """One page of the account's statement for (from_, to] (RFC 3339)."""
        return self._request(
            "GET",
            f"/v1/accounts/{account_id}/statement",
            StatementOut,
            params={"from": from_, "to": to, "limit": limit, "cursor": cursor},
        )

    def statement_pages(
        self, account_id: str, from_: str, to: str, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every page of the statement, as the documents audit.statement.verify_statement
        (and `strongroom audit verify-statement`) checks together."""
        pages = [self.statement(account_id, from_, to, limit=limit)]
        while pages[-1].has_more:
            cursor = pages[-1].next_cursor
            pages.append(self.statement(account_id, from_, to, limit=limit, cursor=cursor))
        return [page.model_dump(by_alias=True) for page in pages]

    # -- webhook endpoints (an admin key) --------------------------------------------------

    def create_webhook_endpoint(
        self,
        url: str,
        enabled_events: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> EndpointOut:
        body = {
            "url": url,
            "enabled_events": list(enabled_events) if enabled_events is not None else None,
        }
        return self._request(
            "POST",
            "/v1/webhook_endpoints",
            EndpointOut,
            json=body,
            idempotency_key=idempotency_key,
        )

    def list_webhook_endpoints(
        self, *, limit: int | None = None, starting_after: str | None = None
    ) -> EndpointList:
        return self._request(
            "GET",
            "/v1/webhook_endpoints",
            EndpointList,
            params={"limit": limit, "starting_after": starting_after},
        )

    def get_webhook_endpoint(self, endpoint_id: str) -> EndpointOut:
        return self._request("GET", f"/v1/webhook_endpoints/{endpoint_id}", EndpointOut)

    def update_webhook_endpoint(
        self, endpoint_id: str, *, enabled: bool, idempotency_key: str | None = None
    ) -> EndpointOut:
        """Disable (enabled=False) or enable again."""
        return self._request(
            "POST",
            f"/v1/webhook_endpoints/{endpoint_id}",
            EndpointOut,
            json={"enabled": enabled},
            idempotency_key=idempotency_key,
        )

    def delete_webhook_endpoint(self, endpoint_id: str) -> EndpointDeleted:
        """Deletes the endpoint with its pending deliveries and recorded attempts."""
        return self._request("DELETE", f"/v1/webhook_endpoints/{endpoint_id}", EndpointDeleted)

    def list_webhook_attempts(
        self,
        endpoint_id: str,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AttemptList:
        """Newest first; the cursors are attempt ids (`has_more` says whether a page follows
        in the direction asked)."""
        return self._request(
            "GET",
            f"/v1/webhook_endpoints/{endpoint_id}/attempts",
            AttemptList,
            params={
                "limit": limit,
                "starting_after": starting_after,
                "ending_before": ending_before,
            },
        )
