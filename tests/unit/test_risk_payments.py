"""risk.payments: the payment fields as the feature engine sees them."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.ledger.model import Payment
from strongroom.risk.payments import canonical_ip, keyed


def fake_hasher(tenant_id: str, purpose: str, value: bytes) -> bytes:
    return hashlib.sha256(f"{tenant_id}|{purpose}|".encode() + value).digest()


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:c000:0201", "192.0.2.1"),
        ("0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1", "fe80::1"),
        ("::1", "::1"),
    ],
)
def test_every_spelling_of_an_address_is_one(spelling: str, canonical: str) -> None:
    assert canonical_ip(spelling) == canonical


def test_the_keyed_ip_of_two_spellings_matches() -> None:
    def ip_key(ip: str) -> str | None:
        return keyed(Payment(customer_id="cus_1", ip=ip), "ten_1", fake_hasher)[2]

    assert ip_key("::ffff:198.51.100.7") == ip_key("198.51.100.7")
    assert ip_key("fe80::2%1") == ip_key("fe80::2")
    assert ip_key("198.51.100.7") != ip_key("198.51.100.8")


@given(
    st.one_of(
        st.tuples(*[st.integers(-5, 300)] * 4).map(lambda t: ".".join(map(str, t))),
        st.lists(st.sampled_from([*"0123456789.:abcdef%", "٣", " ", "\n"]), max_size=16).map(
            "".join
        ),
        st.ip_addresses().map(str),
    )
)
def test_the_ipv4_shortcut_spells_as_ipaddress_does(text: str) -> None:
    """canonical_ip answers a plain dotted quad without parsing it: the same text as the
    ipaddress module's canonical form, and anything it refuses still refused."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
            canonical_ip(text)
        return
    if isinstance(address, ipaddress.IPv4Address):
        assert canonical_ip(text) == address.compressed
