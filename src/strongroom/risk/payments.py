"""A transfer's payment as the feature engine sees it (a PaymentEvent), built the same way by the
gate (before posting) and by the feature store (from risk_events), so the features of a
payment scored now and of the same payment read back later are computed from the same values.
Pure but for the keyed hash it is handed."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Final

from strongroom.ledger.model import DOTTED_QUAD, Direction, NewTransfer, Payment
from strongroom.risk.model import PaymentEvent

# (tenant_id, purpose, value) -> a keyed hash as hex: security.envelope.Envelope.blind_index.
Hasher = Callable[[str, str, bytes], bytes]
PAYEE_PURPOSE: Final = "risk_payee"
DEVICE_PURPOSE: Final = "risk_device"
IP_PURPOSE: Final = "risk_ip"


def payer(t: NewTransfer) -> tuple[str | None, int]:
    """The account a payment is paid from, and what it moves (its debit legs' total)."""
    if t.legs is not None:
        debits = [leg for leg in t.legs if leg.direction is Direction.DEBIT]
        return (debits[0].account_id if debits else None), sum(leg.amount for leg in debits)
    return t.debit_account_id, t.amount


def major(amount: int, scale: int) -> float:
    """Minor units as the feature engine's float in major units (never money that moves)."""
    return amount / float(10**scale)


def canonical_ip(text: str) -> str:
    """One spelling per address: the compressed form, an IPv4-mapped IPv6 address
    (`::ffff:192.0.2.1`, a dual-stack socket's view of an IPv4 client) as its IPv4 address, and
    without an IPv6 zone (`%eth0` names an interface of the host that saw it, not the payer)."""
    if DOTTED_QUAD.fullmatch(text):  # the usual case, already canonical (0.5 us, not 6)
        return text
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped.compressed
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(text.split("%", 1)[0])
    return address.compressed


def keyed(payment: Payment, tenant_id: str, hasher: Hasher) -> tuple[str | None, ...]:
    """(payee, device, ip) as stored: keyed hashes (hex), the IP in its canonical text first
    so that two spellings of one address match."""

    def mac(purpose: str, value: str | None) -> str | None:
        return None if value is None else hasher(tenant_id, purpose, value.encode()).hex()

    ip = None if payment.ip is None else canonical_ip(payment.ip)
    return (
        mac(PAYEE_PURPOSE, payment.payee),
        mac(DEVICE_PURPOSE, payment.device),
        mac(IP_PURPOSE, ip),
    )


def event_of(
    transfer_id: str,
    at_us: int,
    amount: int,
    scale: int,
    customer_id: str,
    keyed_fields: tuple[str | None, ...],
    channel: str | None,
    fraud: bool | None = None,
) -> PaymentEvent:
    payee, device, ip = keyed_fields
    return PaymentEvent(
        event_id=transfer_id,
        at_s=at_us / 1_000_000,
        amount=major(amount, scale),
        customer=customer_id,
        payee=payee,
        device=device,
        ip=ip,
        channel=channel,
        fraud=fraud,
    )
