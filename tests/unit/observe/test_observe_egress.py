"""Where a user's URL may make the server connect (juanie.egress): the address rule, the allow-list, and the checks at
connection time against a real HTTP server on 127.0.0.1 — a name that resolves elsewhere when the URL is saved and to
127.0.0.1 when the request is sent (DNS rebinding) is refused, and nothing reaches the server."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from juanie.egress import (
    EgressConfigError,
    EgressPolicy,
    EgressRefused,
    blocked_reason,
    guarded_async_client,
    guarded_client,
)
from tests.observe_support import Receiver

REFUSED = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fe80::1", "0.0.0.0", "0.1.2.3",
           "::"]  # fmt: skip
ALLOWED = ["10.0.0.1", "192.168.1.10", "172.16.0.1", "93.184.216.34", "2606:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_loopback_link_local_and_unspecified_addresses_are_refused(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None
    with pytest.raises(EgressRefused, match="JUANIE_ALLOWED_PRIVATE_URLS"):
        EgressPolicy().check_address(address, 80, "x:80")


@pytest.mark.parametrize("address", ALLOWED)
def test_other_addresses_private_networks_included_are_allowed(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    EgressPolicy().check_address(address, 80, "x:80")


def test_the_allow_list_takes_url_prefixes_and_cidrs_and_refuses_anything_else() -> None:
    policy = EgressPolicy.parse(" http://127.0.0.1:9090/api/ , 169.254.0.0/16,::1/128 ")
    assert policy.listed("http://127.0.0.1:9090/api/v1/query?query=up")
    for url in ("http://127.0.0.1:9090/admin", "http://127.0.0.1:9091/api/", "https://127.0.0.1:9090/api/",
                "http://127.0.0.1:9090@evil.example/api/", "http://127.0.0.1.evil.example:9090/api/"):  # fmt: skip
        assert not policy.listed(url), url
    policy.check_address("169.254.169.254", 80, "metadata:80")
    policy.check_address("::1", 80, "ip6-localhost:80")
    with pytest.raises(EgressRefused):
        policy.check_address("127.0.0.1", 80, "localhost:80")
    with pytest.raises(EgressConfigError, match="neither a URL prefix"):
        EgressPolicy.parse("127.0.0.1/32, localhost")


def test_validation_refuses_literal_addresses_localhost_and_bad_urls() -> None:
    policy = EgressPolicy()
    for url in ("http://127.0.0.1:8080/hook", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
                "http://localhost:9/", "http://api.localhost/", "http://0.0.0.0:80/", "ftp://example.com/",
                "http://example.com:99999/", "http://2130706433/", "http://0x7f.1/", "http://%31%32%37.0.0.1/",
                "http://[fe80::1%25eth0]/", "http://a..b/", "http://exa\x00mple.com/"):  # fmt: skip
        with pytest.raises(EgressRefused):
            policy.check_url(url)
    EgressPolicy.parse("http://localhost:9/").check_url("http://localhost:9/hook")


def test_a_cidr_never_opens_the_servers_own_ports_but_a_url_prefix_does(http_receiver: Receiver) -> None:
    port = int(http_receiver.url.rsplit(":", 1)[1].split("/")[0])
    by_cidr = EgressPolicy.parse("127.0.0.0/8", own_ports=[port])
    with pytest.raises(EgressRefused, match="this server's own"), guarded_client(by_cidr) as client:
        client.post(http_receiver.url, json={})
    assert http_receiver.requests == []
    by_prefix = EgressPolicy.parse(f"http://127.0.0.1:{port}/hook", own_ports=[port])
    with guarded_client(by_prefix) as client:
        assert client.post(http_receiver.url, json={}).status_code == 200
    assert len(http_receiver.requests) == 1


def test_connections_are_refused_by_default_and_allowed_by_a_cidr(http_receiver: Receiver) -> None:
    port = http_receiver.url.rsplit(":", 1)[1].split("/")[0]
    for url in (http_receiver.url, f"http://localhost:{port}/hook", f"http://[::ffff:127.0.0.1]:{port}/hook"):
        with pytest.raises(EgressRefused, match="loopback"), guarded_client(EgressPolicy()) as client:
            client.post(url, json={})
    assert http_receiver.requests == []
    with guarded_client(EgressPolicy.parse("127.0.0.1/32")) as client:
        assert client.post(http_receiver.url, json={}).status_code == 200


async def test_the_async_client_checks_connections_too(http_receiver: Receiver) -> None:
    async with guarded_async_client(EgressPolicy()) as client:
        with pytest.raises(EgressRefused, match="loopback"):
            await client.post(http_receiver.url, json={})
    assert http_receiver.requests == []


def test_a_name_rebound_to_loopback_after_validation_is_refused_when_connecting(
    http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # the first lookup (validation) answers a public address, later ones 127.0.0.1

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = http_receiver.url.rsplit(":", 1)[1].split("/")[0]
    url = f"http://rebind.test:{port}/hook"
    policy = EgressPolicy()
    policy.check_url(url)  # saved: it looked public
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is a loopback address"), guarded_client(policy) as client:
        client.post(url, json={})
    assert http_receiver.requests == []
