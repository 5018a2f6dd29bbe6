"""The data plane's listening sockets: one per gateway process, on one address, balanced by the kernel.

Every process binds its own socket with SO_REUSEPORT, so the kernel spreads new connections across them by a
hash of the connection, whichever process is idle. (One socket shared by all processes would let the first
process woken take nearly every connection.) Because SO_REUSEPORT would equally let a second gateway of the same
user join the port and quietly take half of its traffic, the primary first makes sure nobody listens there.
"""

from __future__ import annotations

import socket


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind(address: tuple[str, int], backlog: int, shared: bool) -> socket.socket:
    sock = socket.socket(_family(address[0]), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of a previous gateway is fine
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def claim(address: tuple[str, int], backlog: int, shared: bool) -> socket.socket:
    """The primary's socket: fails with EADDRINUSE if anything listens on `address` already (port 0 picks one).

    With `shared`, the address is first claimed by a plain socket, which no listener lets bind, then bound
    again for sharing with the workers.
    """
    if not shared:
        return _bind(address, backlog, shared=False)
    probe = _bind(address, 1, shared=False)
    taken = probe.getsockname()[:2]
    probe.close()
    return _bind((address[0], int(taken[1])), backlog, shared=True)


def join(address: tuple[str, int], backlog: int) -> socket.socket:
    """A worker's socket on the primary's address."""
    return _bind(address, backlog, shared=True)
