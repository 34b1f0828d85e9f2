"""The fraud model registry's operations as request values, for both clients (as `resources`:
each function becomes a method of `Client` and `AsyncClient`). Reading needs `risk:read`;
promoting or shadowing a model `risk:admin` (a user steps up first)."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.client._spec import Call, Paged, model, segment
from strongroom.risk.registry_schemas import RiskModelList, RiskModelOut


def list_risk_models(
    *, limit: int | None = None, starting_after: str | None = None
) -> Call[RiskModelList]:
    """One page of the tenant's fraud models, by version (oldest first)."""
    params = {"limit": limit, "starting_after": starting_after}
    return Call("GET", "/v1/risk/models", model(RiskModelList), params=params)


def _after_last_model(call: Call[RiskModelList], page: RiskModelList) -> Call[RiskModelList] | None:
    if not page.has_more:
        return None
    if not page.data:
        raise RuntimeError(f"{call.path} answered an empty page with has_more: a server bug")
    return call.with_params(starting_after=page.data[-1].version)


def _models(page: RiskModelList) -> Sequence[RiskModelOut]:
    return page.data


def iter_risk_models(
    *, limit: int | None = None, starting_after: str | None = None
) -> Paged[RiskModelList, RiskModelOut]:
    """Every fraud model of the tenant (after `starting_after`)."""
    first = list_risk_models(limit=limit, starting_after=starting_after)
    return Paged(first, _after_last_model, _models)


def get_risk_model(version: str) -> Call[RiskModelOut]:
    """A fraud model: its status and hold-out metrics."""
    return Call("GET", f"/v1/risk/models/{segment(version)}", model(RiskModelOut))


def promote_risk_model(version: str, *, idempotency_key: str | None = None) -> Call[RiskModelOut]:
    """Make the model live (the previous live model is retired)."""
    path = f"/v1/risk/models/{segment(version)}/promote"
    return Call("POST", path, model(RiskModelOut), idempotency_key=idempotency_key)


def shadow_risk_model(version: str, *, idempotency_key: str | None = None) -> Call[RiskModelOut]:
    """Run the model in shadow, acting on nothing (the previous shadow goes back to
    registered)."""
    path = f"/v1/risk/models/{segment(version)}/shadow"
    return Call("POST", path, model(RiskModelOut), idempotency_key=idempotency_key)
