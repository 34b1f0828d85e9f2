"""Sanctions screening's use cases: load a list version, screen a name, screen a customer or
counterparty (a screening point), dismiss or confirm a match, re-screen on a list update.

Lists are deployment-wide. Loading a version stores only what changed (sanctions_entries rows
carry the versions they were current in) and its diff; loading the same content again changes
nothing and says so. Every process keeps one screener over the current entries (screener.py:
built at start, rebuilt when the versions table says a list changed; the payee gate never
waits for a build).

A subject (`customer:<id>`, `counterparty:<id>`) is screened inside its owner's transaction:
its scores at or above the threshold are stored per list entry, with a keyed hash of the
screened name (never the name) and the entry's fingerprint; a hit opens an alert case unless a
reviewer dismissed that (subject, entry) for the same name digest and fingerprint, or an alert
for them is already open. Dismissing or confirming a match through the screening API decides
its open alert case in the same transaction (the case queue's decide_alerts_in). The blocking
index holds keyed hashes of phonetic keys of each subject's name tokens: a new list version
re-screens only the subjects sharing a key with an added, changed or removed entry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.cases.model import Alert, Case, CaseStatus
from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.errors import InvalidName, ListsNotLoaded, LoadRaced
from strongroom.compliance.sanctions.match import build as build_indexed
from strongroom.compliance.sanctions.match import tokens
from strongroom.compliance.sanctions.model import (
    Entry,
    EntryKind,
    ListSource,
    Match,
    PayeeMatch,
    Query,
    Screener,
    ScreenerFactory,
)
from strongroom.compliance.sanctions.screener import REFRESH_S_DEFAULT, ScreenerCache, Stamp
from strongroom.compliance.sanctions.snapshot import (
    ADDED,
    CHANGED,
    REMOVED,
    Diff,
    content_hash,
    diff,
    entry_from_json,
    entry_json,
    phonetic_keys,
    unique_entries,
)
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import CASE_REASON_CHARS_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType

log = logging.getLogger("strongroom.compliance.sanctions")

THRESHOLD_DEFAULT: Final = 0.7  # match.SCREEN_THRESHOLD, the calibrated matcher's
# Tries of a load whose version number a concurrent load of the same list took first.
LOAD_ATTEMPTS_MAX: Final = 3
SUBJECT_MATCHES_MAX: Final = 20  # the stored results of one subject, best first
REASON_CHARS_MAX: Final = 2_000
ALERT_KIND: Final = "sanctions_match"
NAME_PURPOSE: Final = "sanctions_name"  # the keyed hash of a subject's screened name
KEY_PURPOSE: Final = "sanctions_phonetic"  # the keyed hash of a blocking key

CLEAR: Final = "clear"
PROBABLE: Final = "probable"  # an undismissed score at or above the threshold
CONFIRMED: Final = "confirmed"  # an officer confirmed a match

DISMISSED: Final = "sanctions.match_dismissed"
CONFIRMED_EVENT: Final = "sanctions.match_confirmed"
SANCTIONS_EVENT_TYPES: Final = (
    EventType(
        DISMISSED,
        "A reviewer dismissed a sanctions match as a false positive: the subject's id, the "
        "list and entry id; no alert again until the subject's name or the entry changes.",
    ),
    EventType(
        CONFIRMED_EVENT,
        "A reviewer confirmed a sanctions match: the subject's id, the list and entry id.",
    ),
)

# A keyed hash (runtime.risk_hasher: Envelope.blind_index per tenant and purpose).
Hasher = Callable[[str, str, bytes], bytes]
# CaseService.open_alerts: a case per alert, in the caller's transaction.
OpenAlerts = Callable[..., list[Case]]
# CaseService.decide_alerts_in: the open alerts among some case ids decided by their own
# domain's door (a match dismissed or confirmed through the screening API), in the caller's
# transaction: (uow, tenant id, case ids, status, *, actor, reason, effect) -> the cases.
DecideAlerts = Callable[..., list[Case]]


@dataclass(frozen=True, slots=True)
class Screened:
    """What a subject is screened by: its name and the evidence its record holds (a person's
    date of birth, `YYYY-MM-DD`). Decrypted in memory by the customers' domain for the one
    screening; only keyed hashes of it are stored (the name digest, the blocking keys)."""

    name: str
    date_of_birth: str | None = None


# A subject's current name and evidence (None: gone or erased), read for re-screening.
SubjectNames = Callable[[str, str], "Screened | None"]
# KYC's account freezing (KycService.freeze_customer_accounts_in): every account of the
# customer, in the caller's transaction: (uow, tenant id, customer id, actor).
FreezeCustomer = Callable[[UnitOfWork, str, str, str], object]


@dataclass(frozen=True, slots=True)
class LoadResult:
    source: ListSource
    version: int
    unchanged: bool  # the same content as the current version: nothing was stored
    entry_count: int
    added: int
    changed: int
    removed: int
    rescreened: int = 0  # subjects re-screened (their blocking keys met a changed entry's)
    subjects: int = 0  # subjects screened so far, all tenants

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "version": self.version,
            "unchanged": self.unchanged,
            "entries": self.entry_count,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "rescreened": self.rescreened,
            "subjects": self.subjects,
        }


@dataclass(frozen=True, slots=True)
class SubjectScreening:
    subject: str
    status: str
    hits: list[store.ResultRow]
    alerts: list[Case]


def normalised_name(name: str) -> str:
    return " ".join(tokens(name))


def check_name(name: str, param: str = "name") -> str:
    """The name as screened (its normalised tokens); one with no letter or digit once
    normalised (`"   "`, `"!!!"`) is refused: InvalidName (400 `invalid_name`), never a
    "no match" that would read as a clear result."""
    found = normalised_name(name)
    if not found:
        raise InvalidName(param)
    return found


class SanctionsService:
    def __init__(
        self,
        engine: Engine,
        *,
        factory: ScreenerFactory = build_indexed,
        threshold: float = THRESHOLD_DEFAULT,
        hasher: Hasher | None = None,
        open_alerts: OpenAlerts | None = None,
        decide_alerts: DecideAlerts | None = None,
        names: SubjectNames | None = None,
        freeze_customer: FreezeCustomer | None = None,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        refresh_s: float = REFRESH_S_DEFAULT,
        screeners: ScreenerCache | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        """`hasher`, `open_alerts` and `names` are what the screening points need (a service
        for ad-hoc screening and loading takes none); `decide_alerts` closes the alert cases
        of matches dismissed or confirmed through the screening API; `freeze_customer` freezes
        a customer's accounts in the transaction that confirms a match of theirs. `screeners`:
        the process's screener cache, shared with the payee gate (else one of its own, over
        `factory`, reading the versions at most once a `refresh_s`)."""
        assert 0.0 < threshold <= 1.0
        self.engine = engine
        self.threshold = threshold
        self.hasher = hasher
        self.open_alerts = open_alerts
        self.decide_alerts = decide_alerts
        self.names = names
        self.freeze_customer = freeze_customer
        self._audit = audit
        self._events = events
        self.screeners = screeners or ScreenerCache(engine, factory=factory, refresh_s=refresh_s)
        self.clock = clock_ or clock.MonotonicClock()

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    # -- lists -----------------------------------------------------------------------------

    def load(
        self,
        source: ListSource,
        entries: Sequence[Entry],
        *,
        actor: str,
        rescreen: bool = True,
        progress: Callable[[int, int], object] | None = None,
    ) -> LoadResult:
        """Store `entries` as the next version of `source` (the same content as the current
        version: nothing stored, `unchanged`), then re-screen the subjects the changed entries
        could match (`progress(done, total)` as it goes), and record on the version that its
        re-screening completed.

        Before anything, the re-screening still owed by versions stored earlier (of any list:
        a load that stopped after storing its version, or one run with `rescreen=False`) is
        completed and recorded, the unchanged path's included; re-screening a subject twice is
        harmless. `rescreen=False` re-screens nothing and leaves the new version owed."""
        for entry in entries:
            if entry.source is not source:
                raise InvalidRequest(f"entry {entry.entry_id} is of {entry.source.value}")
        by_id = unique_entries(source, entries)  # DuplicateEntry: an id twice, nothing stored
        fingerprints = {k: e.fingerprint() for k, e in by_id.items()}
        sha = content_hash(fingerprints)
        owed = self.rescreen_owed(actor=actor, progress=progress) if rescreen else 0
        for attempt in range(1, LOAD_ATTEMPTS_MAX + 1):
            try:
                stored = self._store_version(source, by_id, fingerprints, sha, actor)
                break
            except Exception as exc:
                # Another load of this list committed the version number this one read as
                # free (its transaction began first): read the versions again, and either
                # find the same content stored (unchanged) or store ours after it.
                if not store.is_duplicate_key(exc):
                    raise
                log.info("sanctions: %s: a concurrent load stored a version first", source.value)
                if attempt == LOAD_ATTEMPTS_MAX:
                    raise LoadRaced(
                        f"{source.value}: other loads of this list kept storing versions "
                        "meanwhile: nothing was stored, run it again"
                    ) from None
        if isinstance(stored, LoadResult):
            return replace(stored, rescreened=owed)
        version, change, removed_bodies = stored
        # The new version's screener, built here (the loader waits, no payment does: the
        # gate keeps the previous one until this one is swapped in), before re-screening.
        self.screeners.rebuild()
        touched = [by_id[k] for k in (*change.added, *change.changed)]
        touched += [entry_from_json(b) for b in removed_bodies]
        rescreened, total = 0, 0
        if rescreen:
            rescreened, total = self.rescreen(touched, actor=actor, progress=progress)
            # Without the screening points nothing could be re-screened: still owed, unless
            # no subject was ever screened (nothing to re-screen).
            if self.names is not None or total == 0:
                self._mark_rescreened(source.value, [version])
        return LoadResult(
            source, version, False, len(by_id), len(change.added), len(change.changed),
            len(change.removed), owed + rescreened, total,
        )  # fmt: skip

    def owed(self) -> list[store.VersionRow]:
        """The versions whose re-screening is still owed (`strongroom sanctions lists`, the
        server's start), every list's, oldest first."""
        with self._uow(write=False) as uow:
            return store.owed_versions(uow)

    def rescreen_owed(
        self, *, actor: str, progress: Callable[[int, int], object] | None = None
    ) -> int:
        """Complete the re-screening owed by every version not recorded as re-screened: the
        subjects the entries those versions touched could match, screened against the current
        lists, then those versions recorded as done. How many subjects it re-screened. A
        service without the screening points (no `names`) re-screens nothing: what is owed
        stays owed, unless no subject was ever screened (then nothing is)."""
        with self._uow(write=False) as uow:
            owed = store.owed_versions(uow)
            nobody = not owed or store.subject_count(uow) == 0
            touched = [
                entry_from_json(body)
                for row in owed
                for body in store.version_bodies(uow, row.source, row.version)
            ]
        if not owed:
            return 0
        if self.names is None:
            if nobody:
                self._mark_all(owed)
            return 0
        log.warning("sanctions: completing the re-screening owed by %d list version(s)", len(owed))
        rescreened, _ = self.rescreen(touched, actor=actor, progress=progress)
        self._mark_all(owed)
        return rescreened

    def _mark_all(self, rows: Sequence[store.VersionRow]) -> None:
        by_source: dict[str, list[int]] = {}
        for row in rows:
            by_source.setdefault(row.source, []).append(row.version)
        for source, versions in by_source.items():
            self._mark_rescreened(source, versions)

    def _mark_rescreened(self, source: str, versions: Sequence[int]) -> None:
        with self._uow() as uow:
            store.mark_rescreened(uow, source, versions, self.clock.now_us())
            uow.commit()

    def _store_version(
        self,
        source: ListSource,
        by_id: dict[str, Entry],
        fingerprints: dict[str, str],
        sha: str,
        actor: str,
    ) -> LoadResult | tuple[int, Diff, list[str]]:
        """One transaction: the same content as the current version answers `unchanged`;
        otherwise the next version, its entries and its diff are stored: (version, diff,
        the removed entries' bodies). A concurrent load that took the version number first
        fails this one on the versions table's primary key (store.is_duplicate_key)."""
        with self._uow() as uow:
            versions = store.list_versions(uow, source.value)
            latest = versions[-1] if versions else None
            if latest is not None and latest.sha256 == sha:
                return LoadResult(
                    source, latest.version, True, latest.entry_count, 0, 0, 0,
                    subjects=store.subject_count(uow),
                )  # fmt: skip
            previous = store.current_fingerprints(uow, source.value)
            change = diff(previous, fingerprints)
            version = (latest.version if latest else 0) + 1
            removed_bodies = store.entry_bodies(uow, source.value, change.removed)
            store.insert_version(
                uow,
                store.VersionRow(
                    source.value, version, sha, len(by_id), len(change.added),
                    len(change.changed), len(change.removed), self.clock.now_us(), actor,
                ),
            )  # fmt: skip
            store.close_entries(uow, source.value, [*change.changed, *change.removed], version - 1)
            store.insert_entries(
                uow,
                source.value,
                version,
                (
                    (k, fingerprints[k], entry_json(by_id[k]))
                    for k in (*change.added, *change.changed)
                ),
            )
            store.insert_changes(
                uow,
                source.value,
                version,
                [
                    *((k, ADDED) for k in change.added),
                    *((k, CHANGED) for k in change.changed),
                    *((k, REMOVED) for k in change.removed),
                ],
            )
            uow.commit()
        return version, change, removed_bodies

    def versions(self, source: ListSource | None = None) -> list[store.VersionRow]:
        with self._uow(write=False) as uow:
            return store.list_versions(uow, source.value if source else None)

    def diff(self, source: ListSource, version: int) -> Diff:
        with self._uow(write=False) as uow:
            found = store.changes(uow, source.value, version)
        by_change: dict[str, list[str]] = {ADDED: [], CHANGED: [], REMOVED: []}
        for entry_id, change in found:
            by_change[change].append(entry_id)
        return Diff(*(tuple(by_change[c]) for c in (ADDED, CHANGED, REMOVED)))

    def current_entries(self) -> list[Entry]:
        with self._uow(write=False) as uow:
            return [entry_from_json(b) for b in store.current_bodies(uow)]

    def warm(self) -> bool:
        """Build the screener now, if a list is loaded (`serve`'s startup): whether it did.
        A version whose re-screening is still owed is said (a warning: `serve`'s job
        `sanctions_rescreen` completes it in the background, as would the next load of any
        list)."""
        for row in self.owed():
            log.warning(
                "sanctions: %s version %d: re-screening still owed (the job sanctions_rescreen "
                "completes it now, in the background)",
                row.source, row.version,
            )  # fmt: skip
        return self.screeners.warm()

    def screener(self) -> tuple[Screener, Stamp]:
        """The screener over every list's current entries, and their versions (a list that
        changed: its new screener, waited for); no list loaded: ListsNotLoaded."""
        return self.screeners.get(fresh=True)

    def payee_match(self, name: str) -> PayeeMatch | None:
        """The payee gate's in-memory screening of a payment's payee name: its best match if it
        scores at least the threshold. It never waits for a screener being built: the previous
        lists' while a new version's builds; none built yet, ScreenerNotReady; no list loaded,
        ListsNotLoaded. A name with no letter or digit: InvalidName."""
        query = Query(name)
        check_name(name)
        screener, stamp = self.screeners.get(fresh=False)
        found = screener.screen(query, limit=1, min_score=self.threshold)
        if not found:
            return None
        best = found[0]
        return PayeeMatch(
            best.entry.source.value,
            best.entry.entry_id,
            best.entry.names[0] if best.entry.names else None,
            best.score,
            dict(stamp).get(best.entry.source.value, 0),
        )

    def screen(self, query: Query, *, limit: int = 10, min_score: float = 0.0) -> list[Match]:
        check_name(query.name)
        screener, _ = self.screener()
        return screener.screen(query, limit=limit, min_score=min_score)

    # -- screening points ------------------------------------------------------------------

    def _digest(self, tenant_id: str, name: str, date_of_birth: str | None = None) -> str:
        """The keyed hash of what the subject was screened by: its normalised name, and its
        date of birth when it has one (a dismissal holds until either changes). A subject
        without one has the digest of its name alone, as before dates were screened."""
        assert self.hasher is not None, "screening a subject needs the keyed hash"
        screened = normalised_name(name)
        if date_of_birth:
            screened += f"\x1f{date_of_birth}"
        return self.hasher(tenant_id, NAME_PURPOSE, screened.encode()).hex()

    def _keys(self, tenant_id: str, keys: Iterable[str]) -> list[str]:
        assert self.hasher is not None, "screening a subject needs the keyed hash"
        return sorted({self.hasher(tenant_id, KEY_PURPOSE, k.encode()).hex() for k in keys})

    def screen_subject(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        subject: str,
        name: str,
        kind: EntryKind | None,
        *,
        actor: str,
        date_of_birth: str | None = None,
    ) -> SubjectScreening:
        """A screening point, in the caller's transaction: the subject's hits stored, an alert
        opened for each new one (not dismissed for this name and entry, not already alerted),
        its blocking keys replaced. No list loaded: the subject is recorded `clear` with its
        keys, so the first load screens it. A name with no letter or digit once normalised is
        refused (InvalidName: the caller's change rolls back), never stored as `clear`.
        `date_of_birth` (`YYYY[-MM[-DD]]`) is evidence, as the ad-hoc screening's: it raises or
        lowers the score of an entry that gives one.

        A `confirmed` subject gets no new alert for an entry it was already alerted for and
        whose alert was decided (a new list version changing that entry, a re-screening):
        the officer has looked at that entry, and the subject stays confirmed and frozen.

        An undecided alert (its case open, its match not dismissed) covers its (subject, entry)
        whatever this screening says: a match this name still makes keeps the open case (no
        second alert), and one it no longer makes (a rename, an entry changed or removed) is
        kept as it was, so the subject stays `probable` and the officer decides the alert on
        what it was raised for. A rename to a name that hits other entries adds their alerts."""
        check_name(name)
        try:
            screener, stamp = self.screener()
        except ListsNotLoaded:
            screener, stamp = None, ()
        versions = dict(stamp)
        query = Query(name, kind, date_of_birth)
        matches = (
            screener.screen(query, limit=SUBJECT_MATCHES_MAX, min_score=self.threshold)
            if screener is not None
            else []
        )
        digest = self._digest(tenant_id, name, date_of_birth)
        now = self.clock.now_us()
        # Locked, as a dismissal's: a confirmation committing meanwhile is kept.
        previous = store.get_subject(uow, tenant_id, subject, lock=True)
        confirmed = previous is not None and previous.status == CONFIRMED
        before = {(r.source, r.entry_id): r for r in store.results(uow, tenant_id, subject)}
        dismissed = {(d.source, d.entry_id): d for d in store.dismissals(uow, tenant_id, subject)}
        # The matches whose alert is undecided: its case open, the match not dismissed.
        open_ids = store.open_cases(
            uow, tenant_id, [r.case_id for r in before.values() if r.case_id is not None]
        )
        pending = {
            k
            for k, r in before.items()
            if r.case_id in open_ids and not _is_dismissed(r, dismissed)
        }
        rows: list[store.ResultRow] = []
        fresh: list[tuple[int, Match]] = []
        for match in matches:
            key = (match.entry.source.value, match.entry.entry_id)
            fingerprint = match.entry.fingerprint()
            prior = before.get(key)
            case_id = None
            if (
                prior is not None
                and prior.case_id is not None
                and (
                    key in pending  # its alert is undecided: it covers this match
                    or (prior.name_digest == digest and prior.fingerprint == fingerprint)
                )
            ):
                case_id = prior.case_id  # alerted already, for this name and this entry
            elif confirmed and prior is not None and prior.case_id is not None:
                case_id = prior.case_id  # a confirmed subject, alerted for this entry already
            done = dismissed.get(key)
            if case_id is None and not (
                done is not None and done.name_digest == digest and done.fingerprint == fingerprint
            ):
                fresh.append((len(rows), match))
            rows.append(
                store.ResultRow(
                    tenant_id, subject, key[0], key[1], round(match.score, 6), fingerprint,
                    versions.get(key[0], 0), digest, case_id, now,
                )
            )  # fmt: skip
        alerts: list[Case] = []
        if fresh and self.open_alerts is not None:
            alerts = self.open_alerts(
                uow,
                tenant_id,
                [
                    Alert(
                        kind=ALERT_KIND,
                        subject=subject,
                        evidence={
                            "entries": [
                                {
                                    "list": m.entry.source.value,
                                    "entry_id": m.entry.entry_id,
                                    "score": round(m.score, 4),
                                    "list_version": versions.get(m.entry.source.value, 0),
                                }
                            ]
                        },
                        code=m.entry.source.value,
                    )
                    for _, m in fresh
                ],
                actor=actor,
            )
            for (i, _), case in zip(fresh, alerts, strict=True):
                r = rows[i]
                rows[i] = store.ResultRow(
                    r.tenant_id, r.subject, r.source, r.entry_id, r.score, r.fingerprint,
                    r.list_version, r.name_digest, case.id, r.screened_at,
                )  # fmt: skip
        # The matches of open alerts this screening no longer makes, kept as they were.
        matched = {(r.source, r.entry_id) for r in rows}
        rows += [before[k] for k in sorted(pending - matched)]
        live = [r for r in rows if not _is_dismissed(r, dismissed)]
        status = CLEAR
        if confirmed:
            status = CONFIRMED  # an officer's confirmation stands until an officer lifts it
        elif live:
            status = PROBABLE
        store.replace_results(uow, tenant_id, subject, rows)
        store.put_subject(
            uow,
            store.SubjectRow(
                tenant_id, subject, digest, status, max((r.score for r in rows), default=0.0), now
            ),
        )
        store.replace_keys(uow, tenant_id, subject, self._keys(tenant_id, phonetic_keys([name])))
        return SubjectScreening(subject, status, rows, alerts)

    def screen_name(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        subject: str,
        kind: str | None,
        name: str,
        actor: str,
        *,
        date_of_birth: str | None = None,
    ) -> None:
        """The customers' screening point (customers.service.ScreenName): a customer (of kind
        `person` or `business`) or a counterparty. The kind a customer was created with is the
        caller's claim, not a fact: it narrows nothing (a listed person registered as a
        business must still be found), so every entry kind is a candidate. A person's date of
        birth is evidence (Query.date_of_birth), decrypted by the caller for this call only."""
        del kind
        self.screen_subject(
            uow, tenant_id, subject, name, None, actor=actor, date_of_birth=date_of_birth
        )

    def rescreen(
        self,
        touched: Sequence[Entry],
        *,
        actor: str,
        progress: Callable[[int, int], object] | None = None,
    ) -> tuple[int, int]:
        """Re-screen the subjects whose blocking keys meet those of `touched` (added, changed
        or removed entries), each in its own transaction; (re-screened, all subjects)."""
        keys = phonetic_keys(name for entry in touched for name in entry.names)
        with self._uow(write=False) as uow:
            total = store.subject_count(uow)
            tenants = store.tenants(uow) if keys and self.names is not None else []
            todo = [
                (tenant, subject)
                for tenant in tenants
                for subject in sorted(
                    store.subjects_with_keys(uow, tenant, self._keys(tenant, keys))
                )
            ]
        assert self.names is not None or not todo
        for done, (tenant, subject) in enumerate(todo, 1):
            found = self.names(tenant, subject) if self.names is not None else None
            if found is not None and normalised_name(found.name):
                with self._uow() as uow:
                    # As at creation: the subject's declared kind narrows nothing.
                    self.screen_subject(
                        uow, tenant, subject, found.name, None, actor=actor,
                        date_of_birth=found.date_of_birth,
                    )  # fmt: skip
                    uow.commit()
            if progress is not None:
                progress(done, len(todo))
        return len(todo), total

    def forget_subject(self, uow: UnitOfWork, tenant_id: str, subject: str) -> None:
        """An erased subject's screening deleted, in the erasure's transaction (the customers'
        ForgetScreening port): its stored matches, its dismissals (their reasons are free text
        about it), its blocking keys, and its status row; all hold keyed hashes of its name,
        which the tenant's hashing key could still link to a guessed name after its data key
        is shredded. A `confirmed` subject keeps its status row, with no name digest: the payee
        gate still blocks payments by it and to it. The alert cases stay (the case queue's
        record; their evidence names list entries, nothing of the subject)."""
        store.forget_subject(uow, tenant_id, subject, keep_status=CONFIRMED)

    # -- reviews ---------------------------------------------------------------------------

    def statuses(self, tenant_id: str, subjects: Sequence[str]) -> dict[str, str]:
        """The screening status of those of `subjects` that were screened (the payee gate)."""
        with self._uow(write=False) as uow:
            return store.statuses(uow, tenant_id, subjects)

    def statuses_in(
        self, uow: UnitOfWork, tenant_id: str, subjects: Sequence[str]
    ) -> dict[str, str]:
        """`statuses` inside the caller's transaction (the payee gate's recheck in the posting
        transaction). Not locked: the posting transaction holds its accounts' locks by then,
        and a confirmation locks the subject, then the customer's accounts (the freeze), so a
        share lock here deadlocked the two. A confirmation committed before this read is seen;
        one committing after it comes after the payment, as if made a moment later."""
        return store.statuses(uow, tenant_id, subjects)

    @staticmethod
    def pending_subjects_in(
        uow: UnitOfWork, transfer_ids: Sequence[str]
    ) -> dict[str, tuple[str, list[str]]]:
        """The payer and payee subjects stored with those of these transfers that were payments
        created pending (sink.PaymentSubjectsSink), inside the caller's transaction: transfer
        id -> (tenant, subjects). The payee gate's recheck of a post."""
        return {
            r.transfer_id: (r.tenant_id, [r.payer] + ([r.payee] if r.payee else []))
            for r in store.payment_subjects(uow, transfer_ids)
        }

    def status(self, tenant_id: str, subject: str) -> store.SubjectRow | None:
        with self._uow(write=False) as uow:
            return store.get_subject(uow, tenant_id, subject)

    def subject(
        self, tenant_id: str, subject: str
    ) -> tuple[store.SubjectRow, list[tuple[store.ResultRow, bool]]]:
        """A subject's screening status and its stored matches, each with whether a reviewer
        dismissed it (for this name and this entry). Another tenant's: as none."""
        with self._uow(write=False) as uow:
            row = store.get_subject(uow, tenant_id, subject)
            if row is None:
                raise NotFound(f"{_id_of(subject)} was never screened", param="subject_id")
            gone = {(d.source, d.entry_id): d for d in store.dismissals(uow, tenant_id, subject)}
            results = store.results(uow, tenant_id, subject)
        return row, [(r, _is_dismissed(r, gone)) for r in results]

    def _result(
        self, uow: UnitOfWork, tenant_id: str, subject: str, source: str, entry_id: str
    ) -> store.ResultRow:
        for row in store.results(uow, tenant_id, subject):
            if row.source == source and row.entry_id == entry_id:
                return row
        # Another tenant's subject answers the same: as one that does not exist.
        raise NotFound(
            f"no match of {source} entry {entry_id} for {_id_of(subject)}", param="subject_id"
        )

    def _record(
        self, uow: UnitOfWork, tenant_id: str, actor: str, kind: str, data: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit.record_all(uow, tenant_id, actor, [(kind, data["subject"], data)])
        if self._events is not None:
            self._events.emit(uow, tenant_id, [(kind, {"object": "sanctions_match", **data})])

    def dismiss(
        self,
        tenant_id: str,
        subject: str,
        source: str,
        entry_id: str,
        *,
        reviewer: str,
        reason: str | None = None,
    ) -> store.DismissalRow:
        """A reviewed false positive: no alert for this subject and entry again until the
        subject's name or the entry changes. An audit leaf and an event (ids only). The open
        alert case that carries the match is approved in the same transaction (the reviewer
        its decider, the reason its reason): the screening door and the case queue agree."""
        _check_reason(reason)
        with self._uow() as uow:
            result = self._result(uow, tenant_id, subject, source, entry_id)
            done: list[store.DismissalRow] = []

            def dismissing() -> None:
                done.append(
                    self.dismiss_in(
                        uow, tenant_id, subject, source, entry_id, reviewer=reviewer,
                        reason=reason,
                    )
                )  # fmt: skip

            self._deciding(
                uow, tenant_id, [result], CaseStatus.APPROVED, reviewer,
                _case_reason("dismissed through POST /v1/screenings/dismissals", reason),
                dismissing,
            )  # fmt: skip
            uow.commit()
        return done[0]

    def _deciding(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        results: Sequence[store.ResultRow],
        status: CaseStatus,
        actor: str,
        reason: str,
        effect: Callable[[], None],
    ) -> None:
        """`effect` (a dismissal, a confirmation) with the alert cases of `results` decided
        around it, in `uow`: through the case queue's service, which locks and decides those
        still open first (the order a decision in the queue takes: the case, then the
        subject), runs `effect`, then records their leaves and events. Without the port (a
        service with no case queue): `effect` alone."""
        case_ids = sorted({r.case_id for r in results if r.case_id is not None})
        if self.decide_alerts is None or not case_ids:
            effect()
            return
        self.decide_alerts(
            uow, tenant_id, case_ids, status, actor=actor, reason=reason, effect=effect
        )

    def dismiss_in(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        subject: str,
        source: str,
        entry_id: str,
        *,
        reviewer: str,
        reason: str | None = None,
    ) -> store.DismissalRow:
        """`dismiss` inside the caller's transaction (an officer clearing the alert case)."""
        result = self._result(uow, tenant_id, subject, source, entry_id)
        row = store.DismissalRow(
            tenant_id, subject, source, entry_id, ids.new_id("sdis"), result.name_digest,
            result.fingerprint, reviewer, reason, self.clock.now_us(),
        )  # fmt: skip
        store.put_dismissal(uow, row)
        # Locked: a confirmation committing meanwhile is seen, never overwritten with clear.
        current = store.get_subject(uow, tenant_id, subject, lock=True)
        if current is not None and current.status == PROBABLE:
            gone = {(d.source, d.entry_id): d for d in store.dismissals(uow, tenant_id, subject)}
            rows = store.results(uow, tenant_id, subject)
            if all(_is_dismissed(r, gone) for r in rows):
                store.set_status(uow, tenant_id, subject, CLEAR)
        self._record(
            uow, tenant_id, reviewer, DISMISSED,
            {"id": row.id, "subject": subject, "list": source, "entry_id": entry_id},
        )  # fmt: skip
        return row

    def confirm(
        self,
        tenant_id: str,
        subject: str,
        source: str,
        entry_id: str,
        *,
        actor: str,
        reason: str | None = None,
    ) -> None:
        """A confirmed match: the subject's status `confirmed` (the payee gate blocks it), a
        customer's accounts frozen, an audit leaf and an event, and the open alert case that
        carries the match declined (the actor its decider), in one transaction."""
        _check_reason(reason)
        with self._uow() as uow:
            result = self._result(uow, tenant_id, subject, source, entry_id)
            self._deciding(
                uow, tenant_id, [result], CaseStatus.DECLINED, actor,
                _case_reason("confirmed through POST /v1/screenings/confirmations", reason),
                lambda: self.confirm_in(uow, tenant_id, subject, [(source, entry_id)], actor=actor),
            )  # fmt: skip
            uow.commit()

    def confirm_in(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        subject: str,
        entries: Sequence[tuple[str, str]],
        *,
        actor: str,
        require_match: bool = True,
    ) -> None:
        """`confirm` of the subject's matches with these (list, entry id) inside the caller's
        transaction: it commits or rolls back with them all. The locks in one order, the
        ledger's and the owner guard's (compliance/sanctions/owners.py): the subject's row (set
        confirmed), then the customer's accounts (frozen, with their leaves and events), then
        the audit log (the confirmations' leaves), so a concurrent payment, account creation or
        unfreeze cannot deadlock with it. A match that does not exist raises NotFound, unless
        not `require_match` (a case's own evidence, below)."""
        if require_match:
            for source, entry_id in entries:
                self._result(uow, tenant_id, subject, source, entry_id)
        store.set_status(uow, tenant_id, subject, CONFIRMED)
        kind, _, subject_id = subject.partition(":")
        if kind == "customer" and self.freeze_customer is not None:
            self.freeze_customer(uow, tenant_id, subject_id, actor)
        for source, entry_id in entries:
            self._record(
                uow, tenant_id, actor, CONFIRMED_EVENT,
                {"subject": subject, "list": source, "entry_id": entry_id},
            )  # fmt: skip

    def decided(self, uow: UnitOfWork, case: Case, status: CaseStatus, actor: str) -> None:
        """The case queue's hook for a `sanctions_match` alert (CaseService.on_decided):
        declining it confirms its matches (the subject `confirmed` and its accounts frozen);
        approving it dismisses them (remembered false positives). Inside the decision's
        transaction, nothing after it: the decision, the confirmation and the freeze commit
        together or not at all (a failing freeze undoes the decision).

        It works from the case's own evidence (the list and entry ids it names), never from
        the subject's current name: the stored match that carries this case (kept while the
        case is open, whatever the subject was renamed to) is what a dismissal records, with
        its name digest and entry fingerprint. Should that match be gone (an alert orphaned
        before open alerts' matches were kept), declining still confirms the subject, and
        approving dismisses nothing that another screening has since stored. A detail that
        is not a JSON object (a hand edit) fails the decision, nothing written."""
        detail = case.detail_dict(strict=True)
        subject = detail.get("subject")
        evidence = detail.get("evidence") or {}
        entries = evidence.get("entries") or []
        if not isinstance(subject, str) or not isinstance(entries, list):
            return
        tenant_id = case.tenant_id
        pairs = [(str(entry["list"]), str(entry["entry_id"])) for entry in entries]
        if status is CaseStatus.DECLINED:
            self.confirm_in(uow, tenant_id, subject, pairs, actor=actor, require_match=False)
        elif status is CaseStatus.APPROVED:
            stored = {(r.source, r.entry_id): r for r in store.results(uow, tenant_id, subject)}
            for source, entry_id in pairs:
                row = stored.get((source, entry_id))
                if row is not None and row.case_id == case.id:
                    self.dismiss_in(
                        uow, tenant_id, subject, source, entry_id, reviewer=actor,
                        reason=case.decision_reason,
                    )  # fmt: skip


def _check_reason(reason: str | None) -> None:
    if reason is not None and len(reason) > REASON_CHARS_MAX:
        raise InvalidRequest(f"a reason is at most {REASON_CHARS_MAX} characters", param="reason")


def _case_reason(door: str, reason: str | None) -> str:
    """The reason an alert case decided through the screening door records: the reviewer's,
    clipped to the case's bound (the whole of it is the dismissal's), else which door."""
    if not reason:
        return door
    if len(reason) <= CASE_REASON_CHARS_MAX:
        return reason
    return reason[: CASE_REASON_CHARS_MAX - 1] + "\u2026"


def _is_dismissed(
    row: store.ResultRow, dismissed: dict[tuple[str, str], store.DismissalRow]
) -> bool:
    found = dismissed.get((row.source, row.entry_id))
    return (
        found is not None
        and found.fingerprint == row.fingerprint
        and (found.name_digest == row.name_digest)
    )


def _id_of(subject: str) -> str:
    """A subject's id (`customer:cus_1` -> `cus_1`): what a client named it by."""
    return subject.partition(":")[2] or subject
