"""How the composition root installs the dashboard: its service over the consents, the TPP
registry's names and the users' sessions, and its routers (the /v1 API and the page)."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.core.errors import NotFound
from strongroom.openbanking.dashboard import api, page
from strongroom.openbanking.dashboard.service import ConsentDashboard
from strongroom.openbanking.resources.service import ConsentService
from strongroom.openbanking.tpp.service import TppService
from strongroom.security.auth.service import UserService
from strongroom.tenancy.model import Principal

__all__ = ["ROUTERS", "build"]

ROUTERS: Final[tuple[Any, ...]] = (api.router, page.router)


def build(
    engine: Engine, consents: ConsentService, tpps: TppService, users: UserService
) -> ConsentDashboard:
    def tpp_name(client_id: str) -> str | None:
        try:
            return tpps.get(client_id).name
        except NotFound:
            return None

    def customer_of(principal: Principal) -> str | None:
        if principal.machine:  # an API key acts as no customer
            return None
        try:
            return users.get_user(principal.tenant_id, principal.id).customer_id
        except NotFound:  # deleted meanwhile
            return None

    return ConsentDashboard(
        engine, consents, tpp_name=tpp_name, customer_of=customer_of, session_of=users.authenticate
    )
