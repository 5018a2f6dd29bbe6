"""Where the server may connect on a user's behalf: webhooks, chat robots, SMTP servers, a project's Prometheus.

A URL typed by someone other than the administrator must not make the server reach what only the server can reach:
loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, where clouds serve instance credentials, and fe80::/10),
unspecified addresses (0.0.0.0/8, ::) and the server's own ports on any of its addresses. The administrator opens
exceptions with ``JUANIE_ALLOWED_PRIVATE_URLS``, comma-separated:

- a URL prefix (``http://127.0.0.1:9090/``) allows exactly that scheme, host, port and path prefix, wherever the
  host resolves;
- a CIDR (``127.0.0.1/32``, ``fd00::/8``) allows those addresses, except the server's own ports.

The rule is applied twice: when a URL is saved (``EgressPolicy.check_url``, so the API answers 4xx with the reason)
and when a connection opens (``guarded_client``, ``guarded_async_client``, ``EgressPolicy.connect``): the host is
resolved once, every address it resolves to is checked, and the socket goes to a checked address, so a name that
resolves to 127.0.0.1 only by the time of sending (DNS rebinding) is refused too. Errors name ``host:port`` and the
reason, never the URL (webhook URLs carry tokens).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import httpcore
import httpx
import psutil

ENV = "JUANIE_ALLOWED_PRIVATE_URLS"
_DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25}
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_LOOPBACK = ipaddress.ip_address("127.0.0.1")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefused(ValueError):
    """A connection the policy does not allow; the message names ``host:port``, the address and why."""


class EgressConfigError(ValueError):
    """An entry of ``JUANIE_ALLOWED_PRIVATE_URLS`` that is neither a URL prefix nor a CIDR."""


@dataclass(frozen=True)
class _Prefix:
    scheme: str
    host: str
    port: int
    path: str


def _parts(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) with the host lowercased and unbracketed; ValueError for a bad port."""
    split = urlsplit(url)
    scheme = split.scheme.lower()
    return scheme, (split.hostname or ""), split.port or _DEFAULT_PORTS.get(scheme, 0), split.path or "/"


def _plain(address: Address) -> Address:
    """``::ffff:127.0.0.1`` is 127.0.0.1 to the kernel, so it is judged as one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def blocked_reason(address: Address) -> str | None:
    """Why ``address`` is not for users' URLs (None: it is): loopback, link-local or unspecified."""
    address = _plain(address)
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    return None


def _local_addresses() -> set[Address]:
    found: set[Address] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    found.add(_plain(ipaddress.ip_address(entry.address.split("%", 1)[0])))
                except ValueError:
                    continue
    return found


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_url(scheme: str, host: str, port: int) -> str:
    """``smtp://mail.example.com:587``: a host and port as a URL, to check or allow-list like any other."""
    return f"{scheme}://{_target(host.strip('[]'), port)}/"


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list and the server's own ports; ``EgressPolicy()`` refuses every private target."""

    prefixes: tuple[_Prefix, ...] = ()
    networks: tuple[Network, ...] = ()
    own_ports: frozenset[int] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, own_ports: Iterable[int] = ()) -> EgressPolicy:
        return cls.parse((os.environ if env is None else env).get(ENV, ""), own_ports)

    @classmethod
    def parse(cls, text: str, own_ports: Iterable[int] = ()) -> EgressPolicy:
        prefixes: list[_Prefix] = []
        networks: list[Network] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            try:
                if "://" in entry:
                    scheme, host, port, path = _parts(entry)
                    if not host or not port:
                        raise ValueError(entry)
                    prefixes.append(_Prefix(scheme, host, port, path))
                else:
                    networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise EgressConfigError(
                    f"{ENV}: {entry!r} is neither a URL prefix (http://host:port/path) nor a CIDR (10.0.0.0/8)"
                ) from None
        return cls(tuple(prefixes), tuple(networks), frozenset(own_ports))

    # -- the rule ----------------------------------------------------------------------------------------------
    def listed(self, url: str) -> bool:
        """True when the administrator allow-listed ``url`` by prefix: it may go wherever its host resolves."""
        try:
            scheme, host, port, path = _parts(url)
        except ValueError:
            return False
        return any(
            (scheme, host, port) == (p.scheme, p.host, p.port) and path.startswith(p.path) for p in self.prefixes
        )

    def check_address(self, address: str | Address, port: int, target: str) -> None:
        """Raise ``EgressRefused`` unless ``target`` (``host:port``) may be reached at ``address``."""
        found = ipaddress.ip_address(address) if isinstance(address, str) else address
        plain = _plain(found)
        reason = blocked_reason(plain)
        if port in self.own_ports and (reason is not None or plain in _local_addresses()):
            raise EgressRefused(
                f"{target}: refused: port {port} of {found} is this server's own; an administrator can allow "
                f"exactly this URL with {ENV}"
            )
        if reason is not None and not any(plain in net or found in net for net in self.networks):
            raise EgressRefused(f"{target}: refused: {found} is {reason}; an administrator can allow it with {ENV}")

    def check_host(self, host: str, port: int) -> None:
        """Validation time: refuse ``host`` if it is, or now resolves to, an address the rule refuses. A name that
        does not resolve now is let through: the connection is checked again when it opens."""
        host = unquote(host).strip("[]").lower()
        target = _target(host, port)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(literal, port, target)
            return
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback, whatever DNS says
            self.check_address(_LOOPBACK, port, target)
        try:
            self.resolve(host, port)
        except socket.gaierror:
            return
        except EgressRefused:
            raise
        except ValueError:  # a name no resolver takes (an empty or 64+ character label, a NUL)
            raise EgressRefused(f"{target}: not a valid host name") from None

    def check_url(self, url: str) -> None:
        """Validation time for an http(s) URL: its syntax, then ``check_host`` unless a prefix allow-lists it."""
        if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
            raise EgressRefused("a URL may not contain spaces or control characters")
        try:
            scheme, host, port, _ = _parts(url)
        except ValueError:
            raise EgressRefused("expected an http:// or https:// URL with a valid port") from None
        if scheme not in ("http", "https") or not host:
            raise EgressRefused("expected an http:// or https:// URL with a host")
        if not self.listed(url):
            self.check_host(host, port)

    # -- connection time ---------------------------------------------------------------------------------------
    def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host``, each checked (raises ``EgressRefused``, or ``socket.gaierror``)."""
        addresses = _unique(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        for address in addresses:
            self.check_address(address, port, _target(host, port))
        return addresses

    async def aresolve(self, host: str, port: int) -> list[str]:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = _unique(str(info[4][0]) for info in infos)
        for address in addresses:
            self.check_address(address, port, _target(host, port))
        return addresses

    def connect(
        self, host: str, port: int, timeout: float | None, source_address: tuple[str, int] | None = None
    ) -> socket.socket:
        """A TCP connection to a checked address of ``host`` (what SMTP uses; HTTP goes through the clients)."""
        last: OSError | None = None
        for address in self.resolve(host, port):
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except OSError as exc:
                last = exc
        raise last or OSError(f"{host} has no address")


# -- HTTP clients ------------------------------------------------------------------------------------------------
class _CheckedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:  # fmt: skip
        try:
            addresses = self._policy.resolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise EgressRefused(f"{path}: refused: Unix sockets are not reachable through users' URLs")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncCheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        try:
            addresses = await self._policy.aresolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(f"{path}: refused: Unix sockets are not reachable through users' URLs")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Transport(httpx.BaseTransport):
    """Allow-listed URLs go through a plain pool; every other request through a pool whose sockets are checked.

    httpx takes no network backend, so the checked transport's pool is replaced by an httpcore pool built with one
    (httpcore's documented extension point; the pool is what ``HTTPTransport`` itself builds).
    """

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._listed = httpx.HTTPTransport(trust_env=False)
        self._checked = httpx.HTTPTransport(trust_env=False)
        self._checked._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_CheckedBackend(policy),
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
        )  # fmt: skip

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._listed if self._policy.listed(str(request.url)) else self._checked
        return transport.handle_request(request)

    def close(self) -> None:
        self._listed.close()
        self._checked.close()


class _AsyncTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._listed = httpx.AsyncHTTPTransport(trust_env=False)
        self._checked = httpx.AsyncHTTPTransport(trust_env=False)
        self._checked._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_AsyncCheckedBackend(policy),
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
        )  # fmt: skip

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._listed if self._policy.listed(str(request.url)) else self._checked
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._listed.aclose()
        await self._checked.aclose()


def guarded_client(policy: EgressPolicy, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that connects only where ``policy`` allows (no proxies from the environment)."""
    return httpx.Client(transport=_Transport(policy), trust_env=False, **kwargs)


def guarded_async_client(policy: EgressPolicy, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_AsyncTransport(policy), trust_env=False, **kwargs)
