"""Webhook targets inside the network are refused; allow_private_targets lets them through."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.events.service import validate_url
from strongroom.events.ssrf import (
    Refusal,
    Resolver,
    Target,
    is_refused_address,
    literal_address,
    parse_url,
    resolve_target,
)

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata services
    "169.254.0.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "224.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2001:db8::1",  # documentation
]

PUBLIC_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


def resolver_for(mapping: dict[str, Sequence[str]]) -> Resolver:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in mapping:
            raise OSError(f"no such host {host}")
        return mapping[host]

    return resolve


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_addresses_are_refused(address: str) -> None:
    assert is_refused_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_refused_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:5432/",
    ],
)
def test_literal_internal_targets_are_refused(url: str) -> None:
    assert resolve_target(url, allow_private_targets=False) is Refusal.PRIVATE_ADDRESS


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/hook",  # resolves to loopback (/etc/hosts)
        "http://2130706433/",  # 127.0.0.1 written as one number
        "http://127.1/",  # 127.0.0.1, abbreviated
        "http://0x7f.0.0.1/",  # 127.0.0.1 in hexadecimal
    ],
)
def test_host_names_resolving_to_loopback_are_refused(url: str) -> None:
    assert resolve_target(url, allow_private_targets=False) is Refusal.PRIVATE_ADDRESS


def test_every_resolved_address_is_checked() -> None:
    resolve = resolver_for({"hooks.example.com": ["93.184.216.34", "10.0.0.5"]})
    got = resolve_target(
        "https://hooks.example.com/x",
        allow_private_targets=False,
        resolver=resolve,
    )
    assert got is Refusal.PRIVATE_ADDRESS


def test_a_public_host_is_sent_to_its_checked_address_with_its_name() -> None:
    resolve = resolver_for({"hooks.example.com": ["93.184.216.34", "2606:4700::1"]})
    got = resolve_target(
        "https://hooks.example.com/in/strongroom?tenant=7",
        allow_private_targets=False,
        resolver=resolve,
    )
    assert got == Target(
        url="https://93.184.216.34:443/in/strongroom?tenant=7",
        host_header="hooks.example.com",
        sni_hostname="hooks.example.com",
        address="93.184.216.34",
    )
    ipv6 = resolver_for({"v6.example.com": ["2606:4700::1"]})
    got6 = resolve_target(
        "http://v6.example.com:8080/",
        allow_private_targets=False,
        resolver=ipv6,
    )
    assert isinstance(got6, Target)
    assert got6.url == "http://[2606:4700::1]:8080/"
    assert got6.host_header == "v6.example.com:8080"
    assert got6.sni_hostname is None


def test_unresolvable_hosts_are_refused() -> None:
    resolve = resolver_for({})
    got = resolve_target(
        "https://nowhere.invalid/",
        allow_private_targets=False,
        resolver=resolve,
    )
    assert got is Refusal.UNRESOLVABLE_HOST
    empty = resolver_for({"empty.example.com": []})
    got_empty = resolve_target(
        "https://empty.example.com/",
        allow_private_targets=True,
        resolver=empty,
    )
    assert got_empty is Refusal.UNRESOLVABLE_HOST


def test_the_flag_allows_private_targets() -> None:
    got = resolve_target("http://127.0.0.1:8080/hook?x=1", allow_private_targets=True)
    assert got == Target(
        url="http://127.0.0.1:8080/hook?x=1",
        host_header="127.0.0.1:8080",
        sni_hostname=None,
        address="127.0.0.1",
    )
    v6 = resolve_target("http://[::1]:9000/", allow_private_targets=True)
    assert isinstance(v6, Target)
    assert v6.url == "http://[::1]:9000/"
    assert v6.host_header == "[::1]:9000"
    local = resolve_target("http://localhost:8000/", allow_private_targets=True)
    assert isinstance(local, Target)
    assert ipaddress.ip_address(local.address).is_loopback
    assert local.host_header == "localhost:8000"


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("", Refusal.INVALID_URL),
        ("not a url", Refusal.INVALID_URL),
        ("http://", Refusal.INVALID_URL),
        ("http://host:99999/", Refusal.INVALID_URL),
        ("http://host:0/", Refusal.INVALID_URL),
        ("http://hóst.example/", Refusal.INVALID_URL),
        ("http://example.com/\x00", Refusal.INVALID_URL),
        ("http://example.com/" + "a" * 3000, Refusal.INVALID_URL),
        ("ftp://example.com/", Refusal.UNSUPPORTED_SCHEME),
        ("file:///etc/passwd", Refusal.UNSUPPORTED_SCHEME),
        ("gopher://127.0.0.1:6379/", Refusal.UNSUPPORTED_SCHEME),
        ("http://user:pw@example.com/", Refusal.CREDENTIALS_IN_URL),
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(url: str, refusal: Refusal) -> None:
    assert parse_url(url) is refusal
    assert resolve_target(url, allow_private_targets=True) is refusal


def test_default_ports_stay_out_of_the_host_header() -> None:
    for url, header in (
        ("http://example.com/", "example.com"),
        ("http://example.com:80/", "example.com"),
        ("https://example.com:443/", "example.com"),
        ("https://example.com:8443/", "example.com:8443"),
        ("http://EXAMPLE.com/", "example.com"),
    ):
        parsed = parse_url(url)
        assert not isinstance(parsed, Refusal)
        assert parsed.host_header == header


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:9/hook",
        "http://127.1:9/hook",
        "http://0x7f000001:9/hook",
        "http://0177.0.0.1:9/hook",
        "http://0x7f.0.0.1/",
        # Names for this machine (second attack round): refused at creation too.
        "http://localhost./hook",
        "http://LOCALHOST:9/hook",
        "http://api.localhost/hook",
        "http://ip6-localhost/hook",
        "http://localhost.localdomain/hook",
    ],
)
def test_an_internal_host_in_another_form_is_refused_when_the_endpoint_is_created(url: str) -> None:
    """Found by a new user: delivery refused these (the resolver reads them as 127.0.0.1), but
    creating the endpoint accepted them, which then failed at every attempt."""
    with pytest.raises(InvalidRequest, match="points inside the network"):
        validate_url(url, allow_private_targets=False)
    assert validate_url(url, allow_private_targets=True) == url
    assert literal_address("hooks.example.com") is None
