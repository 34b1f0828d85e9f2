"""The consent state machine (openbanking/consents.py): random event sequences never reach an
illegal transition, final statuses stay final, each kind keeps to the statuses UK OB v4.0
gives it, and the status update time never goes back."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.core.errors import Conflict
from strongroom.openbanking import consents as c
from strongroom.openbanking.consents import ConsentEvent as E
from strongroom.openbanking.consents import ConsentKind as K
from strongroom.openbanking.consents import ConsentStatus as S
from strongroom.openbanking.model_errors import ConsentStateError
from tests.support import ob_spec

# The legal moves, written out here from the v4.0 descriptions (docs/openbanking-model.md),
# apart from the module's table: whatever the machine does must be one of these.
_ACCESS = {
    (S.AWAU, E.AUTHORISE): S.AUTH,
    (S.AWAU, E.REJECT): S.RJCT,
    (S.AWAU, E.REVOKE): S.CANC,
    (S.AWAU, E.EXPIRE): S.EXPD,
    (S.AUTH, E.REVOKE): S.CANC,
    (S.AUTH, E.EXPIRE): S.EXPD,
}
LEGAL = {
    K.ACCOUNT_ACCESS: _ACCESS,
    K.FUNDS_CONFIRMATION: _ACCESS,
    K.DOMESTIC_PAYMENT: {
        (S.AWAU, E.AUTHORISE): S.AUTH,
        (S.AWAU, E.REJECT): S.RJCT,
        (S.AWAU, E.EXPIRE): S.RJCT,
        (S.AUTH, E.CONSUME): S.COND,
    },
}
OWN_STATUSES = {
    K.ACCOUNT_ACCESS: {S.AWAU, S.AUTH, S.RJCT, S.EXPD, S.CANC},
    K.FUNDS_CONFIRMATION: {S.AWAU, S.AUTH, S.RJCT, S.EXPD, S.CANC},
    K.DOMESTIC_PAYMENT: {S.AWAU, S.AUTH, S.RJCT, S.COND},
}
FINAL = {S.RJCT, S.EXPD, S.CANC, S.COND}

T0_US = 1_700_000_000_000_000

steps = st.lists(
    st.tuples(st.sampled_from(list(E)), st.integers(min_value=-(10**9), max_value=10**9)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(list(K)), events=steps)
def test_no_illegal_transition_is_reachable(kind: K, events: list[tuple[E, int]]) -> None:
    """Any sequence of events, at times that may even go backwards (another worker's clock):
    each accepted event is a legal move, each refused one is a 409 that changes nothing, a
    final status is never left, and the status update time never decreases."""
    state = c.ConsentState.new(kind, T0_US)
    clock_us = T0_US
    for event, jump_us in events:
        clock_us = max(0, clock_us + jump_us)
        before = state
        if (before.status, event) not in LEGAL[kind]:
            with pytest.raises(ConsentStateError) as refused:
                c.apply(state, event, clock_us)
            assert (refused.value.status, refused.value.code) == (409, "consent_state")
            continue
        state, transition = c.apply(state, event, clock_us)
        assert before.status not in FINAL, "a final status was left"
        assert LEGAL[kind][(before.status, event)] == state.status
        assert state.status in OWN_STATUSES[kind]
        assert state.kind == kind
        assert state.created_at_us == T0_US
        assert state.status_updated_at_us >= before.status_updated_at_us
        assert state.status_updated_at_us == max(clock_us, before.status_updated_at_us)
        assert (transition.from_status, transition.to_status) == (before.status, state.status)
        assert (transition.event, transition.at_us) == (event, state.status_updated_at_us)


@pytest.mark.parametrize("kind", list(K))
def test_every_status_and_event_is_decided_as_the_spec_reading_says(kind: K) -> None:
    """All (status, event) pairs of the kind, exhaustively: the same verdict as LEGAL."""
    for status in OWN_STATUSES[kind]:
        for event in E:
            state = c.ConsentState(kind, status, T0_US, T0_US)
            expected = LEGAL[kind].get((status, event))
            if expected is None:
                with pytest.raises(ConsentStateError):
                    c.apply(state, event, T0_US + 1)
            else:
                assert c.apply(state, event, T0_US + 1)[0].status == expected


@pytest.mark.parametrize("kind", list(K))
def test_each_kind_reaches_exactly_its_own_statuses(kind: K) -> None:
    seen = {S.AWAU}
    queue = deque([S.AWAU])
    while queue:
        status = queue.popleft()
        for event in E:
            to = c.next_status(kind, status, event)
            if to is not None and to not in seen:
                seen.add(to)
                queue.append(to)
    assert seen == OWN_STATUSES[kind] == c.STATUSES[kind]
    assert FINAL & seen == set(c.TERMINAL) & seen


def test_final_statuses_allow_no_event() -> None:
    for kind in K:
        for status in c.TERMINAL & c.STATUSES[kind]:
            assert c.allowed_events(kind, status) == ()


def test_a_refusal_is_a_409_that_names_the_status_and_what_is_allowed() -> None:
    state, _ = c.apply(c.ConsentState.new(K.DOMESTIC_PAYMENT, T0_US), E.AUTHORISE, T0_US)
    with pytest.raises(ConsentStateError) as caught:
        c.apply(state, E.REVOKE, T0_US)
    assert isinstance(caught.value, Conflict)
    assert str(caught.value) == (
        "a domestic payment consent in status AUTH (Authorised) cannot be revoked: "
        "it may only be consumed"
    )
    used, _ = c.apply(state, E.CONSUME, T0_US)
    with pytest.raises(
        ConsentStateError, match="COND \\(Consumed\\) cannot be consumed: it is final"
    ):
        c.apply(used, E.CONSUME, T0_US)


def test_a_payment_consent_is_used_once() -> None:
    state = c.ConsentState.new(K.DOMESTIC_PAYMENT, T0_US)
    state, _ = c.apply(state, E.AUTHORISE, T0_US + 5)
    state, transition = c.apply(state, E.CONSUME, T0_US + 9)
    assert (state.status, state.final) == (S.COND, True)
    assert transition.to_dict() == {
        "kind": "domestic_payment",
        "event": "consume",
        "from": "AUTH",
        "to": "COND",
        "at_us": T0_US + 9,
    }


def test_an_update_at_an_earlier_time_keeps_the_last_update_time() -> None:
    state, _ = c.apply(c.ConsentState.new(K.ACCOUNT_ACCESS, T0_US), E.AUTHORISE, T0_US + 100)
    state, transition = c.apply(state, E.REVOKE, T0_US + 40)
    assert state.status_updated_at_us == transition.at_us == T0_US + 100


# -- against the official v4.0 documents ----------------------------------------------------

RESPONSE_SCHEMAS = {
    K.ACCOUNT_ACCESS: ("account-info", "OBReadConsentResponse1"),
    K.DOMESTIC_PAYMENT: ("payment-initiation", "OBWriteDomesticConsentResponse5"),
    K.FUNDS_CONFIRMATION: ("confirmation-funds", "OBFundsConfirmationConsentResponse1"),
}


@pytest.mark.parametrize("kind", list(K))
def test_each_kinds_statuses_are_its_v4_response_enum(kind: K) -> None:
    spec, schema = RESPONSE_SCHEMAS[kind]
    data = ob_spec.component_schema(spec, schema)["properties"]["Data"]
    enum = data["properties"]["Status"]["enum"]
    assert set(enum) == {str(s) for s in c.STATUSES[kind]}
