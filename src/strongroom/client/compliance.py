"""GDPR and compliance operations as request values, for both clients (as `resources`): the
export of everything held about a customer (`pii:read`; an audit leaf each), the latest stored
compliance report (`compliance:read`) and an account's AML profile (`compliance:read`, set with
`compliance:write`). They answer plain JSON objects (dicts): their shape is documented in
docs/gdpr.md, docs/compliance-controls.md and docs/aml.md."""

from __future__ import annotations

from typing import Any

from strongroom.client._spec import Call, segment


def _json(data: Any) -> dict[str, Any]:
    assert isinstance(data, dict), type(data)
    return data


def get_customer_export(
    customer_id: str, *, starting_after: str | None = None
) -> Call[dict[str, Any]]:
    """Everything held about a customer as one JSON object (GDPR Art. 15 and 20; `pii:read`,
    an audit leaf `customer.exported`). When `truncated`, the accounts left follow with
    `starting_after=` the answer's `next_starting_after`."""
    params = {"starting_after": starting_after}
    return Call("GET", f"/v1/customers/{segment(customer_id)}/export", _json, params=params)


def get_compliance_report() -> Call[dict[str, Any]]:
    """The latest stored report of the compliance controls, as this tenant sees it
    (`compliance:read`)."""
    return Call("GET", "/v1/compliance/report", _json)


def get_account_aml(account_id: str) -> Call[dict[str, Any]]:
    """The account's AML profile (`compliance:read`): exempt, jurisdiction (docs/aml.md)."""
    return Call("GET", f"/v1/accounts/{segment(account_id)}/aml", _json)


def update_account_aml(
    account_id: str, *, exempt: bool, jurisdiction: str | None = None
) -> Call[dict[str, Any]]:
    """Set whether the account is exempt from AML alerts, and its jurisdiction
    (`compliance:write`; an audit leaf and an `account.aml_updated` event)."""
    body = {"exempt": exempt, "jurisdiction": jurisdiction}
    return Call("PUT", f"/v1/accounts/{segment(account_id)}/aml", _json, json=body)
