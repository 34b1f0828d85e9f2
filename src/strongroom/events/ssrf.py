"""Refuse webhook targets inside the network: loopback, private, link-local and the like.

A webhook URL is chosen by a tenant, so sending to it must not reach the server's own network
(metadata services at 169.254.169.254, databases on 10.x, admin ports on 127.0.0.1). The host is
resolved and *every* address it resolves to is checked; the request is then sent to the
checked address (with the original Host header and TLS server name), so a DNS answer that
changes between the check and the connection (rebinding) cannot redirect it. Redirects are
not followed by the dispatcher for the same reason.

`allow_private_targets` turns the address check off, for development and tests.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from strongroom.core.limits import WEBHOOK_URL_LENGTH_MAX

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (socket.getaddrinfo by default).
Resolver = Callable[[str, int], Sequence[str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refusal(StrEnum):
    """Why a target is refused. Ordered by precedence."""

    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    CREDENTIALS_IN_URL = "credentials_in_url"
    UNRESOLVABLE_HOST = "unresolvable_host"
    PRIVATE_ADDRESS = "private_address"


@dataclass(frozen=True, slots=True)
class Url:
    """A webhook URL taken apart."""

    scheme: str
    host: str  # lower case, IDNA-encoded; an IPv6 literal without brackets
    port: int
    target: str  # path and query, at least "/"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send: `url` names the checked address; `host_header` and `sni_hostname`
    carry the original host name."""

    url: str
    host_header: str
    sni_hostname: str | None
    address: str


def parse_url(url: str) -> Url | Refusal:
    """Static checks only (no DNS): http or https, a host, no user:password@."""
    if not isinstance(url, str) or not 0 < len(url) <= WEBHOOK_URL_LENGTH_MAX:
        return Refusal.INVALID_URL
    if not url.isascii() or not url.isprintable() or " " in url:
        return Refusal.INVALID_URL
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Refusal.INVALID_URL
    if parts.scheme not in _DEFAULT_PORTS:
        return Refusal.UNSUPPORTED_SCHEME
    if parts.username is not None or parts.password is not None:
        return Refusal.CREDENTIALS_IN_URL
    host = parts.hostname
    if not host:
        return Refusal.INVALID_URL
    if port == 0:
        return Refusal.INVALID_URL
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return Url(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], target)


# Names a resolver answers with a loopback address itself (RFC 6761: every name under
# `localhost.`; the hosts file's usual aliases), whatever DNS says.
_LOOPBACK_NAMES: Final = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)


def is_loopback_name(host: str) -> bool:
    """Whether `host` is a name for this machine, refused when an endpoint is created (the
    delivery checks every resolved address again)."""
    name = host.lower().rstrip(".")
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` writes, or None for a name. Besides the canonical forms, the IPv4
    forms the C resolver also takes as an address (inet_aton: `127.1`, `0x7f000001`,
    `2130706433`, `0177.0.0.1`), so that a URL is judged as delivery would reach it."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


# What inet_aton may read as an address: up to four parts of decimal, octal or hex digits.
_LEGACY_IPV4 = re.compile(r"(?:(?:0[xX][0-9a-fA-F]*|[0-9]+)\.){0,3}(?:0[xX][0-9a-fA-F]*|[0-9]+)")


def is_refused_address(address: IPAddress) -> bool:
    """True for anything that is not a public unicast address: loopback, private (RFC 1918,
    unique local), link-local (169.254/16 with the cloud metadata services, fe80::/10),
    shared (100.64/10), multicast, reserved, unspecified; IPv6 forms that embed an IPv4
    address (mapped, NAT64, 6to4, Teredo) are judged by the address they embed."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return is_refused_address(embedded)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def resolve_target(
    url: str, *, allow_private_targets: bool, resolver: Resolver = system_resolver
) -> Target | Refusal:
    """Parse and resolve `url`; refuse it if any address it resolves to is refused
    (unless `allow_private_targets`)."""
    parsed = parse_url(url)
    if isinstance(parsed, Refusal):
        return parsed
    literal = literal_address(parsed.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = resolver(parsed.host, parsed.port)
        except (OSError, UnicodeError):
            return Refusal.UNRESOLVABLE_HOST
        addresses = []
        for text in found:
            # A scoped IPv6 address ("fe80::1%eth0") is link-local anyway.
            address = literal_address(text.split("%", 1)[0])
            if address is None:
                return Refusal.UNRESOLVABLE_HOST
            addresses.append(address)
        if not addresses:
            return Refusal.UNRESOLVABLE_HOST
    if not allow_private_targets and any(is_refused_address(a) for a in addresses):
        return Refusal.PRIVATE_ADDRESS
    chosen = addresses[0]
    netloc = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    return Target(
        url=f"{parsed.scheme}://{netloc}:{parsed.port}{parsed.target}",
        host_header=parsed.host_header,
        sni_hostname=parsed.host if parsed.scheme == "https" and literal is None else None,
        address=str(chosen),
    )
