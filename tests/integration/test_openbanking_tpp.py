"""The TPP client registry on SQLite and PostgreSQL: registering, listing, rotating keys,
disabling and enabling, each change a leaf of the system tenant's audit log in its
transaction; a refusal writes nothing; the authorization server's lookup of an active client
and its keys."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.tpp.errors import ClientDisabled
from strongroom.openbanking.tpp.model import TppScope, TppStatus
from strongroom.openbanking.tpp.service import TppService
from strongroom.tenancy.service import TenancyService
from tests.support.jwks import ec_key, jwks, okp_key, private_ec_key, rsa_key

CB = "https://tpp.example.com/cb"


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit = AuditLog(engine)
        # As runtime wires it: the system tenant is made on first use, which may be the
        # first registration's (its id is found before the change's transaction opens).
        self.tenancy = TenancyService(engine)
        self.service = TppService(
            engine, audit=self.audit, log_id=lambda: self.tenancy.system_tenant().id
        )

    @property
    def log_id(self) -> str:
        return self.tenancy.system_tenant().id

    def register(self, **fields: Any) -> Any:
        args: dict[str, Any] = {"name": "Acme", "redirect_uris": [CB], "jwks": jwks()}
        return self.service.register(**{**args, **fields, "actor": "api_key:key_op"})

    def leaves(self, client_id: str) -> list[dict[str, Any]]:
        return self.audit.records_for(self.log_id, [client_id]).get(client_id, [])

    def log_size(self) -> int:
        return self.audit.leaves(self.log_id, 0, 1)[1]

    def rows(self) -> int:
        with UnitOfWork(self.engine, write=False) as uow:
            cur = uow.cursor()
            cur.execute("SELECT COUNT(*) FROM ob_clients")
            return int(cur.fetchone()[0])


@pytest.fixture
def registry(db_engine: Engine) -> Registry:
    return Registry(db_engine)


def test_a_registered_client_is_read_back_and_audited(registry: Registry) -> None:
    keys = jwks(ec_key("a"), rsa_key("b"), okp_key("c"))
    client = registry.register(
        name="Acme Payments",
        redirect_uris=[CB, "http://127.0.0.1:8080/cb"],
        jwks=keys,
        scopes=["accounts"],
        software_id="sw-1",
    )
    assert client.id.startswith("tpp_")
    assert registry.service.get(client.id) == client
    assert client.status is TppStatus.ACTIVE
    assert client.scopes == {TppScope.ACCOUNTS}
    assert client.redirect_uris == (CB, "http://127.0.0.1:8080/cb")
    assert client.created_by == "api_key:key_op"
    assert client.public()["jwks"] == keys
    [leaf] = registry.leaves(client.id)
    assert leaf["type"] == "openbanking_client.created"
    assert leaf["actor"] == "api_key:key_op"
    data = leaf["data"]
    assert data["client_id"] == client.id
    assert data["kids"] == ["a", "b", "c"]
    assert data["redirect_uris"] == [CB, "http://127.0.0.1:8080/cb"]
    assert data["scopes"] == ["accounts"]
    assert data["software_id"] == "sw-1"
    assert len(data["thumbprints"]) == 3
    # The leaf names the keys by id and thumbprint; it holds no key material.
    assert keys["keys"][0]["x"] not in str(leaf)


def test_a_refused_registration_writes_nothing(registry: Registry) -> None:
    size = registry.log_size()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "invalid_name"),
        ({"software_id": "a b"}, "invalid_software_id"),
        ({"redirect_uris": ["http://tpp.example.com/cb"]}, "invalid_redirect_uri"),
        ({"scopes": ["cards"]}, "invalid_scope"),
        ({"jwks": jwks(ec_key("a"), ec_key("a"))}, "invalid_jwks"),
        ({"jwks": jwks(private_ec_key())}, "jwks_private_key"),
    ]
    for fields, code in cases:
        with pytest.raises(InvalidRequest) as refused:
            registry.register(**fields)
        assert refused.value.code == code
    assert registry.rows() == 0
    assert registry.log_size() == size


def test_an_idempotent_requests_id_finds_what_it_registered(registry: Registry) -> None:
    first = registry.register(id="tpp_0000000000000000000000000a")
    again = registry.register(id=first.id, name="Another")
    assert again == first
    assert registry.rows() == 1
    assert len(registry.leaves(first.id)) == 1


def test_clients_are_listed_by_id_page_after_page(registry: Registry) -> None:
    made = [registry.register(name=f"TPP {i}").id for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        page, more = registry.service.list_clients(starting_after=after, limit=2)
        seen += [c.id for c in page]
        if not more:
            break
        after = page[-1].id
    assert seen == sorted(made)


def test_rotating_keys_replaces_the_set_and_is_audited(registry: Registry) -> None:
    client = registry.register(jwks=jwks(ec_key("old")))
    new = jwks(ec_key("old-still"), okp_key("new"))
    rotated = registry.service.rotate_keys(client.id, new, actor="cli")
    assert [k.kid for k in rotated.key_set().keys] == ["old-still", "new"]
    assert rotated.updated_at >= client.updated_at
    assert registry.service.get(client.id) == rotated
    kinds = [leaf["type"] for leaf in registry.leaves(client.id)]
    assert kinds == ["openbanking_client.created", "openbanking_client.keys_rotated"]
    assert registry.leaves(client.id)[1]["data"]["kids"] == ["old-still", "new"]
    # The same set again changes nothing and writes no leaf.
    assert registry.service.rotate_keys(client.id, new, actor="cli") == rotated
    assert len(registry.leaves(client.id)) == 2
    # A refused set writes nothing.
    size = registry.log_size()
    with pytest.raises(InvalidRequest) as refused:
        registry.service.rotate_keys(client.id, jwks(private_ec_key()), actor="cli")
    assert refused.value.code == "jwks_private_key"
    assert registry.service.get(client.id) == rotated
    assert registry.log_size() == size
    with pytest.raises(NotFound):
        registry.service.rotate_keys("tpp_missing", new, actor="cli")


def test_disabling_and_enabling_are_audited_once_per_change(registry: Registry) -> None:
    client = registry.register()
    assert registry.service.get_active(client.id) == client
    disabled = registry.service.set_enabled(client.id, False, actor="cli")
    assert disabled.status is TppStatus.DISABLED
    assert registry.service.set_enabled(client.id, False, actor="cli") == disabled
    with pytest.raises(ClientDisabled) as refused:
        registry.service.get_active(client.id)
    assert (refused.value.code, refused.value.status) == ("openbanking_client_disabled", 403)
    with pytest.raises(ClientDisabled):
        registry.service.active_keys(client.id)
    enabled = registry.service.set_enabled(client.id, True, actor="cli")
    assert enabled.status is TppStatus.ACTIVE
    found, keys = registry.service.active_keys(client.id)
    assert found == enabled
    assert [k.kid for k in keys.keys] == ["ec-1"]
    kinds = [leaf["type"] for leaf in registry.leaves(client.id)]
    assert kinds == [
        "openbanking_client.created",
        "openbanking_client.disabled",
        "openbanking_client.enabled",
    ]


def test_an_unknown_client_is_not_found(registry: Registry) -> None:
    for call in (
        lambda: registry.service.get("tpp_missing"),
        lambda: registry.service.get_active("tpp_missing"),
        lambda: registry.service.set_enabled("tpp_missing", False, actor="cli"),
    ):
        with pytest.raises(NotFound) as missing:
            call()
        assert missing.value.param == "client_id"
    assert registry.rows() == 0


def test_the_authorization_servers_lookup_answers_active_clients_only(registry: Registry) -> None:
    """openbanking.ports.ClientLookup: an unknown and a disabled client are the same 401
    invalid_client."""
    client = registry.register(
        jwks=jwks(ec_key("a", alg="ES256"), rsa_key("b")), scopes=["payments"]
    )
    found = registry.service.lookup(client.id)
    assert (found.id, found.name, found.redirect_uris) == (client.id, "Acme", (CB,))
    assert found.scopes == {"payments"}
    assert found.jwks.has_kid("a")
    assert [k.get("kid") for k in found.jwks.candidates("PS256", None)] == ["b"]
    registry.service.set_enabled(client.id, False, actor="cli")
    for client_id in (client.id, "tpp_missing"):
        with pytest.raises(InvalidClient) as refused:
            registry.service.lookup(client_id)
        assert (refused.value.code, refused.value.status) == ("invalid_client", 401)
        assert client_id not in refused.value.detail
