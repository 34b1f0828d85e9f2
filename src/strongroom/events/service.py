"""Webhook endpoints, events and delivery attempts: the use cases the API and CLI call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.engine import Engine as SAEngine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    ATTEMPTS_PRUNE_BATCH,
    EVENTS_PRUNE_BATCH,
    LIST_SCAN_ROWS_MAX,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    WEBHOOK_ENDPOINTS_PER_TENANT_MAX,
)
from strongroom.core.pagination import OLDER, check_limit, decode_cursor, encode_cursor
from strongroom.db.uow import UnitOfWork
from strongroom.events import signing, ssrf, store
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.events.model import (
    ALL_EVENTS,
    Attempt,
    Delivery,
    Endpoint,
    EndpointStatus,
    Event,
    Pruned,
    parse_attempt_id,
)
from strongroom.ledger.service import TRANSFER_EVENT_TYPES, Page
from strongroom.security.envelope import SubjectKind
from strongroom.security.sealing import PREFIX as SEALED_PREFIX
from strongroom.security.sealing import SecretSealer

_EVENTS_CURSOR = "e"  # core.pagination cursors of the event listing

EVENT_TYPES = frozenset(TRANSFER_EVENT_TYPES)


def validate_enabled_events(
    value: object, known: frozenset[str] = EVENT_TYPES
) -> tuple[str, ...] | None:
    """["*"] (or None) for every type, else a list of `known` event types."""
    if value is None or value == [ALL_EVENTS] or value == (ALL_EVENTS,):
        return None
    if not isinstance(value, list | tuple) or not value:
        raise InvalidRequest(
            'enabled_events is ["*"] or a non-empty list of event types',
            param="enabled_events",
            code="invalid_enabled_events",
        )
    for item in value:
        if item not in known:
            raise InvalidRequest(
                f"unknown event type {item!r}; known: {', '.join(sorted(known))}",
                param="enabled_events",
                code="invalid_enabled_events",
            )
    return tuple(sorted(set(value)))


def validate_url(url: object, *, allow_private_targets: bool) -> str:
    """Syntax, and the address when the host is one; a host name is checked again, resolved,
    at every attempt (ssrf.resolve_target)."""
    parsed = ssrf.parse_url(url) if isinstance(url, str) else ssrf.Refusal.INVALID_URL
    if isinstance(parsed, ssrf.Refusal):
        raise InvalidRequest(
            f"the webhook URL is refused: {parsed.value}", param="url", code="invalid_url"
        )
    address = ssrf.literal_address(parsed.host)
    if not allow_private_targets and (
        ssrf.is_loopback_name(parsed.host)
        or (address is not None and ssrf.is_refused_address(address))
    ):
        raise InvalidRequest(
            "the webhook URL points inside the network (for development only: "
            "STRONGROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)",
            param="url",
            code="invalid_url",
        )
    assert isinstance(url, str)
    return url


def _found(endpoint: Endpoint | None, endpoint_id: str, tenant_id: str | None) -> Endpoint:
    """The endpoint, or NotFound; with tenant_id, another tenant's endpoint is not found."""
    if endpoint is None or (tenant_id is not None and endpoint.tenant_id != tenant_id):
        raise NotFound(f"no webhook endpoint {endpoint_id}", param="endpoint_id")
    return endpoint


def _attempt_cursor(
    uow: UnitOfWork, endpoint_id: str, cursor: str | None, param: str
) -> store.AttemptKey | None:
    """Where the cursor's attempt stands. Another endpoint's attempt (another tenant's
    included) answers exactly as an id nobody has, so cursors cannot probe."""
    if cursor is None:
        return None
    parsed = parse_attempt_id(cursor)
    key = None
    if parsed is not None and parsed[1] == endpoint_id:
        event_id, _, attempt = parsed
        key = store.attempt_key(uow, event_id=event_id, endpoint_id=endpoint_id, attempt=attempt)
    if key is None:
        raise InvalidRequest(
            f"{param} names no attempt of this endpoint", param=param, code="invalid_cursor"
        )
    return key


def clear_secret(secrets: SecretSealer | None, uow: UnitOfWork, endpoint: Endpoint) -> Endpoint:
    """`endpoint` with its stored secret opened (as it is without a sealer: a clear one)."""
    if secrets is None:
        assert not endpoint.secret.startswith(SEALED_PREFIX), "a sealed secret and no sealer"
        return endpoint
    clear = secrets.open(uow, endpoint.tenant_id, endpoint.id, endpoint.secret)
    return dataclasses.replace(endpoint, secret=clear)


class EventService:
    def __init__(
        self,
        engine: SAEngine,
        *,
        allow_private_targets: bool = False,
        clock_: clock.MonotonicClock | None = None,
        audit: AuditRecorder | None = None,
        event_types: Sequence[EventType] = (),
        secrets: SecretSealer | None = None,
    ) -> None:
        """`audit` records endpoint creations, updates and deletions as leaves of the
        tenant's log, in their transaction. `event_types`: those other domains emit (`emit`),
        besides the transfers'; an endpoint may subscribe to them. `secrets` seals each
        endpoint's signing secret (security/sealing.py): `serve` always gives it; without it
        (tests of this domain alone) secrets are stored as they are."""
        self.engine = engine
        self.event_types = EVENT_TYPES | {t.name for t in event_types}
        self._secrets = secrets
        self._audit = audit
        self.allow_private_targets = allow_private_targets
        self.clock = clock_ or clock.MonotonicClock()
        self.scan_rows_max = LIST_SCAN_ROWS_MAX  # events a listing page may examine

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    # -- endpoints -------------------------------------------------------------------------

    def create_endpoint(
        self,
        tenant_id: str,
        url: str,
        enabled_events: Sequence[str] | None = None,
        *,
        actor: str = "webhooks",
        id: str | None = None,
    ) -> Endpoint:
        """A new endpoint with a new secret (`whsec_...`). It receives the events created
        from now on. With `id` (an idempotent request's, core.idempotency), an endpoint of this
        tenant that already has it is the answer: the request ran before."""
        if id is not None:
            with contextlib.suppress(NotFound):
                return self.get_endpoint(id, tenant_id=tenant_id)
        checked_url = validate_url(url, allow_private_targets=self.allow_private_targets)
        events = validate_enabled_events(
            list(enabled_events) if enabled_events is not None else None, self.event_types
        )
        now = self.clock.now_us()
        endpoint = Endpoint(
            id=id or ids.new_id("we"),
            tenant_id=tenant_id,
            url=checked_url,
            secret=signing.new_secret(),
            enabled_events=events,
            status=EndpointStatus.ENABLED,
            failure_count=0,
            created_at=now,
            updated_at=now,
        )
        with self._uow() as uow:
            if store.count_endpoints(uow, tenant_id) >= WEBHOOK_ENDPOINTS_PER_TENANT_MAX:
                raise Conflict(
                    f"a tenant has at most {WEBHOOK_ENDPOINTS_PER_TENANT_MAX} webhook endpoints",
                    param="url",
                )
            stored = endpoint
            if self._secrets is not None:
                sealed = self._secrets.seal(
                    uow, tenant_id, endpoint.id, SubjectKind.WEBHOOK_ENDPOINT, endpoint.secret
                )
                stored = dataclasses.replace(endpoint, secret=sealed)
            store.insert_endpoint(uow, stored, actor)
            self._record(uow, tenant_id, "webhook_endpoint.created", endpoint, actor)
            uow.commit()
        return endpoint

    def _record(
        self, uow: UnitOfWork, tenant_id: str, kind: str, endpoint: Endpoint, actor: str
    ) -> None:
        """A leaf for an admin action on an endpoint, by `actor` (the API key that asked):
        which endpoint and what it listens to, not its URL (which may carry a token) or its
        secret."""
        if self._audit is not None:
            events = None if endpoint.enabled_events is None else list(endpoint.enabled_events)
            data = {"endpoint_id": endpoint.id, "enabled_events": events}
            self._audit.record_all(uow, tenant_id, actor, [(kind, endpoint.id, data)])

    def _clear(self, uow: UnitOfWork, endpoint: Endpoint) -> Endpoint:
        """The endpoint with its secret in clear, as the API and the dispatcher need it."""
        return clear_secret(self._secrets, uow, endpoint)

    def get_endpoint(self, endpoint_id: str, *, tenant_id: str | None = None) -> Endpoint:
        """With tenant_id, another tenant's endpoint is not found."""
        with self._uow(write=False) as uow:
            found = _found(store.get_endpoint(uow, endpoint_id), endpoint_id, tenant_id)
            return self._clear(uow, found)

    def list_endpoints(
        self,
        *,
        tenant_id: str | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Endpoint]:
        check_limit(limit)
        with self._uow(write=False) as uow:
            rows = store.list_endpoints(uow, tenant_id, starting_after, limit + 1)
            page = [self._clear(uow, row) for row in rows[:limit]]
        return Page(page, len(rows) > limit)

    def set_endpoint_enabled(
        self,
        endpoint_id: str,
        enabled: bool,
        *,
        tenant_id: str | None = None,
        actor: str = "webhooks",
    ) -> Endpoint:
        """Disable, or enable again (forgetting its failures): its pending deliveries resume;
        events created while it was disabled are not queued for it."""
        status = EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED
        with self._uow() as uow:
            _found(store.get_endpoint(uow, endpoint_id, lock=True), endpoint_id, tenant_id)
            store.set_endpoint_status(uow, endpoint_id, status, self.clock.now_us())
            endpoint = _found(store.get_endpoint(uow, endpoint_id), endpoint_id, tenant_id)
            kind = "webhook_endpoint.enabled" if enabled else "webhook_endpoint.disabled"
            self._record(uow, endpoint.tenant_id, kind, endpoint, actor)
            endpoint = self._clear(uow, endpoint)
            uow.commit()
        return endpoint

    def delete_endpoint(
        self, endpoint_id: str, *, tenant_id: str | None = None, actor: str = "webhooks"
    ) -> Endpoint:
        """Delete the endpoint with its pending deliveries and its recorded attempts, in one
        transaction; returns what was deleted. An attempt in flight meanwhile is not
        recorded (store.record_attempt)."""
        with self._uow() as uow:
            endpoint = _found(
                store.get_endpoint(uow, endpoint_id, lock=True), endpoint_id, tenant_id
            )
            endpoint = self._clear(uow, endpoint)
            store.delete_endpoint(uow, endpoint_id)
            if self._secrets is not None:  # its secret is crypto-shredded with it
                self._secrets.forget(uow, endpoint.tenant_id, endpoint_id)
            self._record(uow, endpoint.tenant_id, "webhook_endpoint.deleted", endpoint, actor)
            uow.commit()
        return endpoint

    def seal_clear_secrets(self, *, batch: int = 500) -> int:
        """Seals the secrets still stored in clear (endpoints made before secrets were
        sealed), a batch per transaction; how many. `serve` runs it at start."""
        assert self._secrets is not None, "no sealer to seal with"
        sealed = 0
        while True:
            with self._uow() as uow:
                rows = store.clear_secrets(uow, SEALED_PREFIX, batch)
                for endpoint_id, tenant_id, clear in rows:
                    kind = SubjectKind.WEBHOOK_ENDPOINT
                    new = self._secrets.seal(uow, tenant_id, endpoint_id, kind, clear)
                    sealed += store.set_secret(uow, endpoint_id, clear, new)
                uow.commit()
            if len(rows) < batch:
                return sealed

    # -- events and deliveries -------------------------------------------------------------

    def emit(
        self, uow: UnitOfWork, tenant_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """Events of another domain (events.hooks.EventEmitter), in its transaction."""
        if not items:
            return
        now = self.clock.now_us()
        rows = []
        for event_type, data in items:
            assert event_type in self.event_types, f"undeclared event type {event_type}"
            body = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
            rows.append((ids.new_id("evt"), event_type, body, now))
        store.insert_tenant_events(uow, tenant_id, rows)

    def get_event(self, event_id: str, *, tenant_id: str | None = None) -> Event:
        with self._uow(write=False) as uow:
            found = store.get_event(uow, event_id)
        if found is None or (tenant_id is not None and found[1] != tenant_id):
            raise NotFound(f"no event {event_id}", param="event_id")
        return found[0]

    def list_events(
        self,
        *,
        tenant_id: str | None = None,
        ledger_id: str | None = None,
        event_type: str | None = None,
        starting_after: str | None = None,
        cursor: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Event]:
        """Newest first. A page examines at most LIST_SCAN_ROWS_MAX events (another tenant's
        history costs a tenant nothing more than that), so it may hold fewer than `limit`
        events, even none, while `has_more` is true: `next_cursor`, given back as `cursor`,
        goes on from where it stopped. `starting_after` (the last event id of the previous
        page) still works."""
        check_limit(limit)
        if starting_after is not None and cursor is not None:
            raise InvalidRequest("give starting_after or cursor, not both", param="cursor")
        before_seq = None
        if starting_after is not None:
            before_seq = self.get_event(starting_after, tenant_id=tenant_id).seq
        elif cursor is not None:
            older, before_seq = decode_cursor(cursor, _EVENTS_CURSOR)
            if not older:
                raise InvalidRequest("not a cursor of this listing", param="cursor",
                                     code="invalid_cursor")  # fmt: skip
        with self._uow(write=False) as uow:
            rows, stopped_at = store.list_events(
                uow,
                tenant_id=tenant_id,
                ledger_id=ledger_id,
                event_type=event_type,
                before_seq=before_seq,
                limit=limit + 1,
                scan_rows_max=self.scan_rows_max,
            )
        if len(rows) > limit:
            return Page(
                rows[:limit], True, encode_cursor(_EVENTS_CURSOR, OLDER, rows[limit - 1].seq)
            )
        if stopped_at is not None:
            return Page(rows, True, encode_cursor(_EVENTS_CURSOR, OLDER, stopped_at))
        return Page(rows, False)

    def backlog(self) -> tuple[int, int]:
        """(events not yet routed to endpoints, deliveries still pending)."""
        with self._uow(write=False) as uow:
            return store.backlog(uow)

    def list_endpoint_attempts(
        self,
        endpoint_id: str,
        *,
        tenant_id: str | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Attempt]:
        """An endpoint's attempts, newest first (by time, then attempt number, then event id:
        a total order). A cursor is the id of one of this endpoint's attempts: the page after
        it (`starting_after`) or the one before it (`ending_before`), in the same order."""
        check_limit(limit)
        if starting_after is not None and ending_before is not None:
            raise InvalidRequest(
                "give starting_after or ending_before, not both", param="ending_before"
            )
        with self._uow(write=False) as uow:
            _found(store.get_endpoint(uow, endpoint_id), endpoint_id, tenant_id)
            after = _attempt_cursor(uow, endpoint_id, starting_after, "starting_after")
            before = _attempt_cursor(uow, endpoint_id, ending_before, "ending_before")
            rows = store.list_endpoint_attempts(
                uow, endpoint_id, after=after, before=before, limit=limit + 1
            )
        data = rows[:limit]
        if before is not None:
            data.reverse()  # fetched nearest the cursor first
        return Page(data, len(rows) > limit)

    def list_attempts(
        self,
        *,
        event_id: str | None = None,
        endpoint_id: str | None = None,
        limit: int = PAGE_SIZE_MAX,
    ) -> list[Attempt]:
        """Recorded attempts for an event and/or an endpoint, newest first (for operators and
        tests: the API pages with list_endpoint_attempts)."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            return store.list_attempts(uow, event_id=event_id, endpoint_id=endpoint_id, limit=limit)

    def list_deliveries(
        self,
        *,
        event_id: str | None = None,
        endpoint_id: str | None = None,
        limit: int = PAGE_SIZE_MAX,
    ) -> list[Delivery]:
        """The delivery state per (event, endpoint), oldest event first."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            return store.list_deliveries(
                uow, event_id=event_id, endpoint_id=endpoint_id, limit=limit
            )

    # -- retention -------------------------------------------------------------------------

    def prune(
        self,
        *,
        before_us: int,
        keep: Callable[[], bool] = lambda: True,
        events_batch: int = EVENTS_PRUNE_BATCH,
        attempts_batch: int = ATTEMPTS_PRUNE_BATCH,
    ) -> Pruned:
        """Delete what is older than `before_us`: webhook attempts, then events with their
        settled deliveries and attempts, a bounded batch per transaction, as long as `keep()`
        (the job's lease) holds. Never touched: the ledger, the audit log, endpoints, an event
        still to be routed or with a pending delivery, and the newest event
        (store.prune_events). A pruned event is gone from GET /v1/events/{id} (404) and from
        the listing, whose cursors (sequence numbers) go on past it."""
        assert events_batch >= 1
        assert attempts_batch >= 1
        attempts = 0
        with self._uow(write=False) as uow:
            endpoint_ids = store.endpoint_ids(uow)
        for endpoint_id in endpoint_ids:
            count = attempts_batch
            while count == attempts_batch:
                if not keep():
                    return Pruned(attempts=attempts)
                with self._uow() as uow:
                    count = store.prune_attempts(uow, endpoint_id, before_us, attempts_batch)
                    uow.commit()
                attempts += count
        pruned = Pruned(attempts=attempts)
        after_seq: int | None = 0
        while after_seq is not None and keep():
            with self._uow() as uow:
                *counts, after_seq = store.prune_events(
                    uow, after_seq=after_seq, before_us=before_us, limit=events_batch
                )
                uow.commit()
            pruned += Pruned(*counts)
        return pruned


if TYPE_CHECKING:
    _implements: EventEmitter = EventService(cast(SAEngine, None))
