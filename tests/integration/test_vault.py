"""The card vault on both backends: tokens, fingerprints, reveals with their audit leaves,
values bound to their card, deletion by crypto-shredding, and tokenizations from many threads
sharing commits."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core import ids
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.runtime import build_ledger
from strongroom.security import aead
from strongroom.security.envelope import Envelope
from strongroom.security.errors import KeyUnavailableError
from strongroom.security.kms import (
    KeyState,
    LocalKeyring,
    master_key_from_secret,
    new_master_secret,
)
from strongroom.security.vault.committer import GroupCommit
from strongroom.security.vault.model import CardInput, check_card
from strongroom.security.vault.service import (
    CARD_EVENT_TYPES,
    NewCard,
    VaultService,
    VaultWrite,
)
from strongroom.settings import Settings

TODAY = {"year": 2026, "month": 12}


def card(number: str = "4242424242424242", name: str = "Ada Lovelace") -> CardInput:
    return check_card(number, 12, 2030, name, "123", **TODAY)


@pytest.fixture
def vault(db_engine: Engine, db_url: str, keyring: LocalKeyring) -> tuple[VaultService, AuditLog]:
    _, audit = build_ledger(db_engine, Settings(database_url=db_url))
    return VaultService(db_engine, Envelope(keyring), audit), audit


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring.create(
        tmp_path / "keyring.json", master_key_from_secret(new_master_secret())
    )


def leaf_types(audit: AuditLog, tenant: str) -> list[tuple[str, str]]:
    found, _ = audit.leaves(tenant, 0, 1000)
    return [(x["type"], x["content"]["data"]["card"]) for x in found]


def test_tokens_fingerprints_and_tenants(vault: tuple[VaultService, AuditLog]) -> None:
    svc, audit = vault
    first = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    again = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    other = svc.tokenize("ten_a", "api_key:key_1", card("5555555555554444"), ids.new_id("card"))
    theirs = svc.tokenize("ten_b", "api_key:key_2", card(), ids.new_id("card"))
    # The same card: a new token, the same fingerprint; another tenant's fingerprint differs.
    assert first.id != again.id
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert theirs.fingerprint != first.fingerprint
    assert first.to_dict()["masked_number"] == "42424242****4242"
    assert svc.get("ten_a", first.id) == first
    with pytest.raises(NotFound):
        svc.get("ten_b", first.id)
    with pytest.raises(NotFound):
        svc.open("ten_b", first.id)
    listed = svc.list("ten_a", fingerprint=first.fingerprint, limit=10)
    assert [c.id for c in listed.data] == [again.id, first.id]
    assert not listed.has_more
    page = svc.list("ten_a", limit=2)
    assert [c.id for c in page.data] == [other.id, again.id]
    assert page.has_more
    rest = svc.list("ten_a", starting_after=again.id, limit=2)
    assert [c.id for c in rest.data] == [first.id]
    assert svc.list("ten_b", fingerprint=first.fingerprint, limit=10).data == []
    assert leaf_types(audit, "ten_a") == [
        ("card.created", first.id),
        ("card.created", again.id),
        ("card.created", other.id),
    ]


def test_a_reveal_is_audited_and_a_sealed_value_opens_only_in_its_card_and_field(
    vault: tuple[VaultService, AuditLog], db_engine: Engine
) -> None:
    svc, audit = vault
    ada = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    bob = svc.tokenize("ten_a", "api_key:key_1", card(name="Bob"), ids.new_id("card"))
    revealed = svc.reveal("ten_a", ada.id, "api_key:key_reveal")
    assert (revealed.number, revealed.holder_name) == ("4242424242424242", "Ada Lovelace")
    assert "4242424242424242" not in repr(revealed)
    found, _ = audit.leaves("ten_a", 0, 100)
    assert found[-1]["type"] == "card.revealed"
    assert found[-1]["content"]["actor"] == "api_key:key_reveal"
    assert found[-1]["content"]["data"] == {"card": ada.id}
    # Ada's sealed number copied onto Bob's row does not open: it is bound to its card.
    with UnitOfWork(db_engine) as uow:
        cur = uow.cursor()
        cur.execute(f"SELECT sealed_number FROM cards WHERE id = '{ada.id}'")
        (sealed,) = cur.fetchone()
        q = "UPDATE cards SET sealed_number = ? WHERE id = ?"
        cur.execute(q if uow.sqlite else q.replace("?", "%s"), (sealed, bob.id))
        uow.commit()
    with pytest.raises(aead.DecryptionFailed):
        svc.open("ten_a", bob.id)
    # Ada's number and name swapped on her own row do not open either: each is bound to its
    # field (the associated data), not only to the card's key.
    with UnitOfWork(db_engine) as uow:
        cur = uow.cursor()
        q = (
            "UPDATE cards SET sealed_number = sealed_holder_name, "
            "sealed_holder_name = sealed_number WHERE id = ?"
        )
        cur.execute(q if uow.sqlite else q.replace("?", "%s"), (ada.id,))
        uow.commit()
    with pytest.raises(aead.DecryptionFailed):
        svc.open("ten_a", ada.id)


def test_deleting_a_card_shreds_its_key(
    vault: tuple[VaultService, AuditLog], db_engine: Engine
) -> None:
    svc, audit = vault
    kept = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    gone = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    svc.delete("ten_a", gone.id, "api_key:key_1")
    with pytest.raises(NotFound):
        svc.delete("ten_a", gone.id, "api_key:key_1")
    with pytest.raises(NotFound):
        svc.open("ten_a", gone.id)
    with pytest.raises(NotFound):
        svc.delete("ten_b", kept.id, "api_key:key_2")  # another tenant's
    assert svc.open("ten_a", kept.id).number == "4242424242424242"
    with UnitOfWork(db_engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(
            "SELECT subject_id, kind, wrapped IS NULL, shredded_at IS NULL FROM subject_keys"
        )
        keys = {r[0]: (r[1], bool(r[2]), bool(r[3])) for r in cur.fetchall()}
        cur.execute("SELECT id FROM cards")
        rows = [r[0] for r in cur.fetchall()]
    assert keys == {kept.id: ("card", False, True), gone.id: ("card", True, False)}
    assert rows == [kept.id]
    assert leaf_types(audit, "ten_a")[-1] == ("card.deleted", gone.id)


@pytest.mark.timeout(120)
def test_concurrent_tokenizations_share_commits(
    vault: tuple[VaultService, AuditLog], db_engine: Engine
) -> None:
    svc, audit = vault
    threads_n, each = 8, 40
    made: list[str] = []
    lock = threading.Lock()
    with GroupCommit[VaultWrite](svc.commit, wait_us=2_000) as committer:

        def worker(n: int) -> None:
            for _ in range(each):
                new: NewCard = svc.seal("ten_a", f"api_key:key_{n}", card(), ids.new_id("card"))
                committer.submit(new).result(timeout=60)
                with lock:
                    made.append(new.card.id)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = committer.stats
    assert stats.items == threads_n * each
    assert stats.batches < stats.items  # callers shared commits
    assert stats.largest_batch > 1
    with UnitOfWork(db_engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT id FROM cards")
        stored = sorted(r[0] for r in cur.fetchall())
    assert stored == sorted(made)
    assert sorted(ref for _, ref in leaf_types(audit, "ten_a")) == sorted(made)
    assert all(svc.open("ten_a", x).number == "4242424242424242" for x in made[:5])


def test_a_retried_token_keeps_what_its_first_attempt_committed(
    vault: tuple[VaultService, AuditLog],
) -> None:
    """An idempotent retry mints the same token: writing it again keeps the first row and its
    key (they still open together), adds no second leaf, and fails nobody else's
    tokenization in the batch."""
    svc, audit = vault
    token = ids.new_id("card")
    first = svc.tokenize("ten_a", "api_key:key_1", card(), token)
    retry = svc.seal("ten_a", "api_key:key_1", card(), token)
    bystander = svc.seal("ten_a", "api_key:key_1", card("5555555555554444"), ids.new_id("card"))
    svc.commit([retry, bystander])
    assert svc.get("ten_a", token) == first
    assert [t for t, ref in leaf_types(audit, "ten_a") if ref == token] == ["card.created"]
    assert svc.open("ten_a", token).number == "4242424242424242"
    assert svc.open("ten_a", bystander.card.id).number == "5555555555554444"


def test_a_card_under_a_disabled_key_version_is_not_revealed(
    vault: tuple[VaultService, AuditLog], keyring: LocalKeyring
) -> None:
    svc, _ = vault
    made = svc.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    keyring.rotate()
    keyring.set_state(1, KeyState.DISABLED)
    with pytest.raises(KeyUnavailableError):
        svc.reveal("ten_a", made.id, "api_key:key_reveal")
    assert svc.get("ten_a", made.id) == made  # the masked card is still shown
    keyring.set_state(1, KeyState.RETIRED)
    assert svc.reveal("ten_a", made.id, "api_key:key_reveal").number == "4242424242424242"


class RecordingEmitter:
    """A fake of the events domain's emitter: what the vault emitted, by tenant."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, str, dict[str, object]]] = []

    def emit(
        self, uow: UnitOfWork, tenant_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        self.emitted += [(tenant_id, kind, dict(data)) for kind, data in items]


def test_events_name_the_token_only(
    vault: tuple[VaultService, AuditLog], db_engine: Engine
) -> None:
    svc, audit = vault
    emitter = RecordingEmitter()
    with_events = VaultService(db_engine, svc.envelope, audit, emitter)
    made = with_events.tokenize("ten_a", "api_key:key_1", card(), ids.new_id("card"))
    with_events.delete("ten_a", made.id, "api_key:key_1")
    assert emitter.emitted == [
        ("ten_a", "card.created", {"card": made.id}),
        ("ten_a", "card.deleted", {"card": made.id}),
    ]
    assert {kind for kind, _ in CARD_EVENT_TYPES} == {"card.created", "card.deleted"}
