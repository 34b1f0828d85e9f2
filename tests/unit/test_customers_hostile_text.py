"""Personal data that would act on whoever displays it is refused (the review of issue 10):
control characters (a terminal escape) and bidirectional overrides (text shown reversed, a
name or an address that reads as another), as the card vault refuses them in a holder's
name. Joiners, which some scripts need in names, stay allowed."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.customers.model import CustomerKind, parse_personal_data

TODAY = dt.date(2026, 12, 6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Ada \x1b[31mLovelace"),
        ("name", "Ada \u202eecalevoL"),
        ("name", "\u2066Ada\u2069 Lovelace"),
        ("name", "Ada\x07"),
        ("email", "a\u202e@example.com"),
        ("email", "ada\x1b@example.com"),
        ("address", {"line1": "1 St\x1b James", "city": "London", "country": "GB"}),
        ("address", {"line1": "1 St James", "city": "\u202eLondon", "country": "GB"}),
    ],
)
def test_control_and_bidi_characters_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_personal_data({"name": "Ada", field: value}, CustomerKind.PERSON, TODAY)
    assert (refused.value.param or "").startswith(field)
    assert "\x1b" not in refused.value.detail
    assert "\u202e" not in refused.value.detail


def test_joiners_and_marks_in_names_stay_allowed() -> None:
    names = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Zo\u0308e", "Ana-Lu\u00edsa"]
    for name in names:
        data = parse_personal_data({"name": name}, CustomerKind.PERSON, TODAY)
        assert data.name == name
