"""Users on SQLite and PostgreSQL: password sign-in with Argon2id (rehashed when the
parameters rise), lockout, TOTP enrolment with reuse refused, sessions that expire (absolute
and idle) or are revoked, step-up, and the audit leaves, which name no email or secret."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import InvalidRequest
from strongroom.db.uow import UnitOfWork
from strongroom.runtime import build_ledger
from strongroom.security.auth import store, totp
from strongroom.security.auth.errors import (
    Conflict,
    InvalidChallenge,
    InvalidCode,
    InvalidCredentials,
    TotpRequired,
)
from strongroom.security.auth.factors import Factors
from strongroom.security.auth.model import AuthConfig
from strongroom.security.auth.passwords import PasswordPolicy, Passwords
from strongroom.security.auth.service import UserService, stepped_up_recently
from strongroom.security.envelope import Envelope
from strongroom.security.kms import (
    KeyState,
    LocalKeyring,
    master_key_from_secret,
    new_master_secret,
)
from strongroom.settings import Settings
from strongroom.tenancy.access import StepUpRequired, require_step_up
from strongroom.tenancy.service import TenancyService

TENANT = "ten_people"
EMAIL = "Ada.Lovelace@Example.com"
PASSWORD = "correct horse battery staple"
OWASP = PasswordPolicy(memory_kib=19 * 1024, time_cost=2, parallelism=1)
_S = 1_000_000


@dataclass
class Clock:
    """A clock the test moves."""

    now: int = 1_800_000_000 * _S
    ticks: list[int] = field(default_factory=list)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * _S)


@dataclass
class People:
    users: UserService
    factors: Factors
    audit: AuditLog
    clock: Clock
    engine: Engine


@pytest.fixture
def people(db_engine: Engine, db_url: str, tmp_path: Path) -> People:
    keyring = LocalKeyring.create(
        tmp_path / "keyring.json", master_key_from_secret(new_master_secret())
    )
    _ledger, audit = build_ledger(db_engine, Settings(database_url=db_url))
    clock = Clock()
    config = AuthConfig(login_failures_max=3, lockout_s=600, session_ttl_s=3600, session_idle_s=600)
    users = UserService(db_engine, Passwords(OWASP), config, kms=keyring, audit=audit, now_us=clock)
    return People(users, Factors(users), audit, clock, db_engine)


def _user_row(people: People, user_id: str) -> store.UserRow:
    with UnitOfWork(people.engine, write=False) as uow:
        row = store.get_user(uow, user_id)
    assert row is not None
    return row


def test_sign_in_gives_a_session_whose_token_is_stored_only_hashed(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "admin", PASSWORD, actor="cli")
    new = people.users.sign_in(TENANT, "ada.lovelace@example.com ", PASSWORD, None)
    assert new.token.startswith("st_")
    principal = people.users.authenticate(new.token)
    assert principal is not None
    assert (principal.user_id, principal.actor) == (user.id, f"user:{user.id}")
    with UnitOfWork(people.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT id FROM sessions")
        stored = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT email, password_hash FROM users")
        email, encoded = cur.fetchone()
    assert new.token not in stored
    assert stored == [principal.session_id]
    assert email == EMAIL.lower()
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in encoded


def test_wrong_password_unknown_email_and_unknown_tenant_answer_alike(people: People) -> None:
    people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    answers = []
    for tenant, email, password in [
        (TENANT, EMAIL, "wrong password!"),
        (TENANT, "nobody@example.com", PASSWORD),
        (None, EMAIL, PASSWORD),
        (TENANT, "not an email", PASSWORD),
    ]:
        with pytest.raises(InvalidCredentials) as caught:
            people.users.sign_in(tenant, email, password, None)
        answers.append((caught.value.code, caught.value.detail))
    assert len(set(answers)) == 1


def test_lockout_after_repeated_failures_then_unlock(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            people.users.sign_in(TENANT, EMAIL, "wrong password!", None)
    # Locked: even the right password is refused, with the same answer.
    with pytest.raises(InvalidCredentials):
        people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    assert _user_row(people, user.id).locked_until == people.clock.now + 600 * _S
    people.clock.advance(601)
    assert people.users.sign_in(TENANT, EMAIL, PASSWORD, None).token
    assert _user_row(people, user.id).failed_count == 0


def test_a_rise_of_the_parameters_rehashes_at_the_next_sign_in(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "auditor", PASSWORD, actor="cli")
    before = _user_row(people, user.id).password_hash
    assert before is not None
    assert "m=19456,t=2,p=1" in before
    stronger = UserService(
        people.engine,
        Passwords(PasswordPolicy(memory_kib=19 * 1024, time_cost=3, parallelism=1)),
        people.users.config,
        kms=people.users.kms,
        now_us=people.clock,
    )
    stronger.sign_in(TENANT, EMAIL, PASSWORD, None)
    after = _user_row(people, user.id).password_hash
    assert after is not None
    assert "m=19456,t=3,p=1" in after
    assert after != before
    # Still the same password, under either service.
    assert stronger.sign_in(TENANT, EMAIL, PASSWORD, None).token
    assert people.users.sign_in(TENANT, EMAIL, PASSWORD, None).token


def _secret_of(uri: str) -> bytes:
    import base64
    from urllib.parse import parse_qs, urlsplit

    text = parse_qs(urlsplit(uri).query)["secret"][0]
    return base64.b32decode(text + "=" * (-len(text) % 8))


def test_totp_enrolment_sealed_secret_and_reuse_refused(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "admin", PASSWORD, actor="cli")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    uri = people.factors.enrol_totp(session.principal)
    secret = _secret_of(uri)
    row = _user_row(people, user.id)
    assert row.totp_secret is not None
    assert secret not in row.totp_secret
    now_s = people.clock.now // _S
    people.factors.confirm_totp(session.principal, totp.totp(secret, now_s))
    with pytest.raises(Conflict):
        people.factors.enrol_totp(session.principal)
    # Now a sign-in needs a code; the code just used for the confirmation is refused.
    with pytest.raises(TotpRequired):
        people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    with pytest.raises(InvalidCredentials):
        people.users.sign_in(TENANT, EMAIL, PASSWORD, totp.totp(secret, now_s))
    people.clock.advance(30)
    code = totp.totp(secret, people.clock.now // _S)
    second = people.users.sign_in(TENANT, EMAIL, PASSWORD, code)
    # The same code again, for a step-up: refused (a replay).
    with pytest.raises(InvalidCode):
        people.factors.step_up_totp(second.principal, code)
    people.clock.advance(30)
    until = people.factors.step_up_totp(second.principal, totp.totp(secret, people.clock.now // _S))
    assert until == people.clock.now + people.users.config.step_up_window_s * _S


def test_totp_survives_a_rotation_a_rewrap_and_the_old_version_disabled(people: People) -> None:
    """TOTP secrets are wrapped by the key manager itself: `keys status` counts them, the
    rewrap moves them, `keys destroy` waits for them (seen failing before they were)."""
    people.users.create_user(TENANT, EMAIL, "admin", PASSWORD, actor="cli")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    secret = _secret_of(people.factors.enrol_totp(session.principal))
    now_s = people.clock.now // _S
    people.factors.confirm_totp(session.principal, totp.totp(secret, now_s))
    kms = people.users.kms
    envelope = Envelope(kms)
    assert envelope.wrapped_by_version(people.engine) == {1: 1}
    kms.rotate()
    assert envelope.rewrap(people.engine) == 1
    assert envelope.wrapped_by_version(people.engine) == {2: 1}
    kms.set_state(1, KeyState.DISABLED)
    people.clock.advance(30)
    code = totp.totp(secret, people.clock.now // _S)
    assert people.users.sign_in(TENANT, EMAIL, PASSWORD, code).token.startswith("st_")


def test_sessions_expire_idle_and_absolute_and_on_sign_out(people: People) -> None:
    people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    idle = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    people.clock.advance(599)
    assert people.users.authenticate(idle.token) is not None  # used: idle expiry moves on
    people.clock.advance(599)
    assert people.users.authenticate(idle.token) is not None
    people.clock.advance(601)  # unused for longer than the idle window
    assert people.users.authenticate(idle.token) is None

    busy = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    for _ in range(7):  # used every 500 s: never idle, but the absolute expiry is one hour
        people.clock.advance(500)
        assert people.users.authenticate(busy.token) is not None
    people.clock.advance(500)
    assert people.users.authenticate(busy.token) is None

    gone = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    principal = people.users.authenticate(gone.token)
    assert principal is not None
    people.users.sign_out(principal)
    assert people.users.authenticate(gone.token) is None
    assert people.users.authenticate("st_" + "x" * 43) is None


def test_step_up_window_and_the_helper(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "admin", PASSWORD, actor="cli")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    principal = people.users.authenticate(session.token)
    assert principal is not None
    with pytest.raises(StepUpRequired):
        require_step_up(principal, now_us=people.clock.now)
    people.users.mark_stepped_up(principal, "totp")
    principal = people.users.authenticate(session.token)
    assert principal is not None
    require_step_up(principal, now_us=people.clock.now)
    assert stepped_up_recently(people.engine, user.id, 300, people.clock.now)
    people.clock.advance(301)
    with pytest.raises(StepUpRequired):
        require_step_up(principal, now_us=people.clock.now)
    assert not stepped_up_recently(people.engine, user.id, 300, people.clock.now)


def test_role_change_applies_to_live_sessions(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    people.users.set_role(TENANT, user.id, "auditor", actor="api_key:key_x")
    principal = people.users.authenticate(session.token)
    assert principal is not None
    assert principal.role.value == "auditor"
    with pytest.raises(Conflict):
        people.users.create_user(TENANT, EMAIL.upper(), "support", PASSWORD, actor="cli")


def test_audit_leaves_name_ids_never_the_email_or_secrets(people: People) -> None:
    user = people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="api_key:key_a")
    people.users.set_role(TENANT, user.id, "auditor", actor="api_key:key_a")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    uri = people.factors.enrol_totp(session.principal)
    people.factors.confirm_totp(
        session.principal, totp.totp(_secret_of(uri), people.clock.now // _S)
    )
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            people.users.sign_in(TENANT, EMAIL, "wrong password!", None)
    people.users.mark_stepped_up(session.principal, "totp")
    leaves, _size = people.audit.leaves(TENANT, 0, 100)
    kinds = [leaf["type"] for leaf in leaves]
    assert kinds == [
        "user.created",
        "user.role_changed",
        "user.totp_enrolled",
        "user.locked",
        "user.stepped_up",
    ]
    text = json.dumps(leaves)
    for secret in (EMAIL, EMAIL.lower(), PASSWORD, _secret_of(uri).hex(), "Lovelace"):
        assert secret not in text
    assert user.id in text


def test_a_tenant_lookup_and_api_key_ceiling(db_engine: Engine) -> None:
    tenancy = TenancyService(db_engine)
    key, _secret = tenancy.create_api_key("acme", ["ledger:write"], transfer_ceiling=10**20)
    assert tenancy.transfer_ceiling(key.id) == 10**20
    found = tenancy.tenant_by_name("acme")
    assert found is not None
    assert found.id == key.tenant_id
    assert tenancy.tenant_by_name("nobody") is None
    tenancy.revoke_api_key(key.id)
    assert tenancy.transfer_ceiling(key.id) is None


def test_a_time_step_is_accepted_once_even_by_racing_requests(people: People) -> None:
    """Two requests that both read the user before either wrote (the same code sent twice at
    once): the conditional update lets one through."""
    user = people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    stale = _user_row(people, user.id)
    results = []
    for _ in range(2):
        with UnitOfWork(people.engine) as uow:
            results.append(store.accept_totp_step(uow, stale.id, 1000))
            uow.commit()
    assert results == [True, False]
    with UnitOfWork(people.engine) as uow:
        assert not store.accept_totp_step(uow, stale.id, 999)  # an older step, too
        assert store.accept_totp_step(uow, stale.id, 1001)
        uow.commit()


def test_purge_deletes_expired_sessions_and_challenges_only(people: People) -> None:
    people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    old = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    people.factors.authentication_options(TENANT)
    people.clock.advance(3601)  # past the session's hour and the challenge's 5 minutes
    fresh = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    people.users.purge()
    with UnitOfWork(people.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT id FROM sessions")
        left = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT COUNT(*) FROM auth_challenges")
        (challenges,) = cur.fetchone()
    assert fresh.principal.session_id in left
    assert old.principal.session_id not in left
    assert challenges == 0


def test_an_invitation_sets_the_first_password_once(people: People) -> None:
    user, token = people.users.create_invited_user(TENANT, EMAIL, "support", actor="cli")
    assert token.startswith("inv_")
    with pytest.raises(InvalidCredentials):  # no password yet: nothing matches
        people.users.sign_in(TENANT, EMAIL, "", None)
    weak = "short"
    with pytest.raises(InvalidRequest):
        people.users.accept_invitation(token, weak)
    assert people.users.accept_invitation(token, PASSWORD).id == user.id
    assert people.users.sign_in(TENANT, EMAIL, PASSWORD, None).token
    with pytest.raises(InvalidChallenge):  # spent
        people.users.accept_invitation(token, "another long passphrase")
    # Expired: seven days.
    _other, late = people.users.create_invited_user(
        TENANT, "late@x.example", "auditor", actor="cli"
    )
    people.clock.advance(7 * 86_400 + 1)
    with pytest.raises(InvalidChallenge):
        people.users.accept_invitation(late, PASSWORD)
    with pytest.raises(InvalidChallenge):
        people.users.accept_invitation("inv_" + "x" * 43, PASSWORD)
    leaves, _size = people.audit.leaves(TENANT, 0, 100)
    assert [leaf["type"] for leaf in leaves] == [
        "user.created",
        "user.invitation_accepted",
        "user.created",
    ]
    assert leaves[0]["content"]["data"]["invited"] is True
    assert token not in json.dumps(leaves)


def test_totp_step_up_guesses_count_toward_the_lockout(people: People) -> None:
    """A stolen session must not try the 10^6 codes at POST /v1/auth/step-up: each wrong code
    counts as a failed sign-in does, and a locked account steps up no more (seen failing
    before it did: the step-up took guesses without limit)."""
    user = people.users.create_user(TENANT, EMAIL, "admin", PASSWORD, actor="cli")
    session = people.users.sign_in(TENANT, EMAIL, PASSWORD, None)
    secret = _secret_of(people.factors.enrol_totp(session.principal))
    people.factors.confirm_totp(session.principal, totp.totp(secret, people.clock.now // _S))
    people.clock.advance(30)
    right = totp.totp(secret, people.clock.now // _S)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(3):
        with pytest.raises(InvalidCode):
            people.factors.step_up_totp(session.principal, wrong)
    assert _user_row(people, user.id).locked_until == people.clock.now + 600 * _S
    # Locked: the right code is refused too, with the same answer.
    with pytest.raises(InvalidCode):
        people.factors.step_up_totp(session.principal, right)
    people.clock.advance(601)
    code = totp.totp(secret, people.clock.now // _S)
    assert people.factors.step_up_totp(session.principal, code) > people.clock.now
    assert _user_row(people, user.id).failed_count == 0


def test_a_role_change_keeps_the_user_kind(people: People) -> None:
    """A customer user stays a customer, bound to their customer_id, and a staff user staff:
    a role change across the kinds would give a staff role a customer_id, or a customer
    role none (seen failing before: both were accepted)."""
    staff = people.users.create_user(TENANT, EMAIL, "support", PASSWORD, actor="cli")
    client = people.users.create_user(
        TENANT, "c@example.com", "customer", PASSWORD, actor="cli", customer_id="cus_1"
    )
    for user, role in ((client, "admin"), (staff, "customer")):
        with pytest.raises(InvalidRequest) as caught:
            people.users.set_role(TENANT, user.id, role, actor="cli")
        assert caught.value.code == "invalid_role"
        assert _user_row(people, user.id).role == user.role.value
    assert people.users.set_role(TENANT, staff.id, "auditor", actor="cli").role.value == "auditor"
