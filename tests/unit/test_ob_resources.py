"""The consent resources' pure pieces: the tenant names the OB paths resolve (and how long a
name is remembered), booking date-time parameters, transaction page cursors, and the refusal
renderer the HTTP layer calls on OB paths."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import API_KEY_CACHE_TTL_S
from strongroom.openbanking.resources.api import booking_datetime, render_refusal
from strongroom.openbanking.resources.reads import Cursor
from strongroom.openbanking.resources.wiring import tenant_resolver
from strongroom.tenancy.model import SYSTEM_TENANT_NAME, Tenant
from strongroom.tenancy.service import TenancyService


@dataclass
class FakeTenancy:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    reads: int = 0

    def tenant_by_name(self, name: str) -> Tenant | None:
        self.reads += 1
        return self.tenants.get(name)


def test_tenant_names_resolve_to_live_tenants_only_and_are_remembered_a_while() -> None:
    tenancy = FakeTenancy({"acme": Tenant("ten_acme", "acme", 0)})
    tenancy.tenants[SYSTEM_TENANT_NAME] = Tenant("ten_sys", SYSTEM_TENANT_NAME, 0)
    tenancy.tenants["gone"] = Tenant("ten_gone", "gone", 0, suspended_at=5)
    now = [100.0]
    resolve = tenant_resolver(cast(TenancyService, tenancy), now_s=lambda: now[0])
    assert resolve("acme") == "ten_acme"
    assert resolve(SYSTEM_TENANT_NAME) is None  # holds no customers: never an account provider
    assert resolve("gone") is None  # suspended
    assert resolve("nobody") is None
    assert resolve("ácme") is None
    reads = tenancy.reads
    tenancy.tenants["acme"] = Tenant("ten_acme", "acme", 0, suspended_at=7)
    assert resolve("acme") == "ten_acme"  # remembered
    assert tenancy.reads == reads
    now[0] += API_KEY_CACHE_TTL_S
    assert resolve("acme") is None  # the suspension seen once the name is read again


def test_booking_date_times_take_an_optional_time_and_ignore_a_zone() -> None:
    day = booking_datetime("2024-03-01", "fromBookingDateTime")
    assert day == booking_datetime("2024-03-01T00:00:00", "fromBookingDateTime")
    assert day == booking_datetime("2024-03-01T00:00:00+05:00", "fromBookingDateTime")
    assert day == booking_datetime("2024-03-01T00:00:00Z", "fromBookingDateTime")
    assert booking_datetime(None, "x") is None
    assert booking_datetime("2024-03-01T00:00:01.5", "x") == cast(int, day) + 1_500_000
    for bad in ("2024-13-01", "yesterday", "2024-03-01T25:00:00", "2024-03-01 00:00:00", "1"):
        with pytest.raises(InvalidRequest) as caught:
            booking_datetime(bad, "toBookingDateTime")
        assert (caught.value.code, caught.value.param) == (
            "invalid_ob_datetime",
            "toBookingDateTime",
        )


def test_page_cursors_round_trip_and_refuse_anything_else() -> None:
    cursor = Cursor("acc_01abc", 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "acc", ".3", "acc.x", "acc.-1", "acc." + "9" * 20, "acc.٣"):
        assert Cursor.decode(bad) is None, bad


def test_the_http_layers_refusals_are_rendered_the_ob_way() -> None:
    scope: dict[str, Any] = {"headers": [(b"x-fapi-interaction-id", b"not-a-uuid")]}
    for status in (404, 405, 415):
        got, headers, body = render_refusal(scope, status, "not_found", "no such route")
        assert (got, body) == (status, b"")
        assert len(headers["x-fapi-interaction-id"]) == 36  # a new UUID: the one sent is not
    uuid_sent = "0c7c6f8e-3c57-4a4e-9f0f-2b4b1b6f7a11"
    scope = {"headers": [(b"x-fapi-interaction-id", uuid_sent.encode())]}
    got, headers, body = render_refusal(scope, 413, "request_too_large", "the body is over 4 MiB")
    parsed = json.loads(body)
    assert (got, headers["x-fapi-interaction-id"], parsed["Id"]) == (400, uuid_sent, uuid_sent)
    assert parsed["Errors"] == [{"ErrorCode": "U002", "Message": "the body is over 4 MiB"}]
    assert headers["content-type"] == "application/json; charset=utf-8"
    got, _, body = render_refusal(scope, 431, "request_headers_too_large", "too large")
    assert (got, json.loads(body)["Errors"][0]["ErrorCode"]) == (400, "U006")
    got, _, body = render_refusal(scope, 500, "internal_error", "an internal error occurred")
    assert (got, json.loads(body)["Errors"][0]["ErrorCode"]) == (500, "U000")
